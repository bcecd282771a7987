"""Finds a dataset's sessions, stream files, clocks and labels in a raw root, as its spec declares.

Shared by ingest, alignment and `modalops dataset check`. Every reader raises RawDataError
naming the file (and line where there is one); callers quarantine on it.
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modalops.dataset.corrections import apply_corrections, session_corrections
from modalops.dataset.errors import MISSING_FILE, RawDataError, fetch_bytes
from modalops.dataset.spec import DatasetSpec
from modalops.kinds import get_kind
from modalops.kinds.base import Stream, StreamSource

TIME_SCALE = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
NO_LABEL = "no label"
TRUTH_DIR = "truth"  # generators may keep true clocks here; no stage reads it but the align report
# A session id names a folder (spec.sessions.folder) and is matched exactly in tables: one plain
# name. A '/' once made the session's folder the parent of every session (issue 23).
SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SESSION_ID_RULE = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, no '..'"


@dataclass(frozen=True)
class ClockModel:
    """Device clock relative to the reference: t_device = t_ref + offset_s + drift_ppm*1e-6*t_ref."""

    offset_s: float = 0.0
    drift_ppm: float = 0.0

    def to_device(self, t_ref: np.ndarray | float) -> np.ndarray | float:
        return t_ref + self.offset_s + self.drift_ppm * 1e-6 * t_ref

    def to_reference(self, t_device: np.ndarray | float) -> np.ndarray | float:
        return (t_device - self.offset_s) / (1.0 + self.drift_ppm * 1e-6)


@dataclass
class SessionStreams:
    """Everything recorded in one session; a stream that could not be read is None."""

    session_id: str
    meta: dict[str, Any]
    clocks: dict[str, ClockModel]  # starting-guess clocks per stream (clock file or zero)
    labels: pd.DataFrame  # start_s, end_s, label on the reference clock
    streams: dict[str, Stream | None] = field(default_factory=dict)
    sync: dict[str, np.ndarray] | None = None  # explicit sync markers per stream, device clocks
    problems: list[tuple[str, RawDataError]] = field(default_factory=list)  # (stream, error)

    def stream(self, name: str) -> Stream | None:
        return self.streams.get(name)


# ---- tables ------------------------------------------------------------------------------------


def read_table(data: bytes, uri: str, fmt: str = "auto", **kwargs: Any) -> pd.DataFrame:
    """A CSV, TSV or Parquet file as a DataFrame; RawDataError names the file."""
    if fmt == "auto":
        lower = uri.lower()
        fmt = (
            "parquet"
            if lower.endswith((".parquet", ".pq"))
            else "tsv"
            if lower.endswith(".tsv")
            else "csv"
        )
    try:
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data), sep="\t" if fmt == "tsv" else ",", **kwargs)
    except Exception as exc:  # pandas and pyarrow raise several parser errors
        what = "Parquet" if fmt == "parquet" else fmt.upper()
        raise RawDataError(uri, f"not a readable {what} file ({exc})") from None


def check_times(uri: str, times: np.ndarray, what: str, first_line: int = 2) -> None:
    """Timestamps must be finite and strictly increasing; the error names the first bad line."""
    if times.size == 0:
        raise RawDataError(uri, f"{what}: no timestamps")
    bad = ~np.isfinite(times)
    if bad.any():
        line = int(np.argmax(bad)) + first_line
        raise RawDataError(
            uri, f"{what}: {int(bad.sum())} non-finite timestamps (first at line {line})"
        )
    steps = np.diff(times)
    if np.any(steps < 0):
        line = int(np.argmax(steps < 0)) + 1 + first_line
        raise RawDataError(uri, f"{what}: timestamps out of order (first at line {line})")
    if np.any(steps == 0):
        line = int(np.argmax(steps == 0)) + 1 + first_line
        raise RawDataError(uri, f"{what}: duplicated timestamps (first at line {line})")


def read_sessions(store: Any, spec: DatasetSpec) -> pd.DataFrame:
    """The sessions table, checked against the spec (id column, metadata, label column). Ids
    are not checked here: a caller skips or quarantines one `session_id_problem` refuses."""
    key = spec.sessions.table
    uri = store.uri(key)
    id_col = spec.sessions.id_column
    df = read_table(fetch_bytes(store, key), uri, dtype=str, keep_default_na=False, na_values=[""])
    needed = [id_col, *spec.metadata.columns]
    if spec.metadata.subject:
        needed.append(spec.metadata.subject)
    if spec.labels.source == "session":
        needed.append(spec.labels.column)
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise RawDataError(uri, f"missing columns {missing} (the dataset spec names them)")
    # an empty id cell is '' (refused by session_id_problem), not the id 'nan'
    df[id_col] = df[id_col].where(df[id_col].notna(), "").astype(str)
    if df[id_col].duplicated().any():
        dups = sorted(df.loc[df[id_col].duplicated(), id_col].unique())
        raise RawDataError(uri, f"duplicated session ids {dups}")
    return df


def session_id_problem(session_id: str) -> str | None:
    """Why `session_id` cannot name a session folder (None: it can)."""
    if SESSION_ID.fullmatch(session_id) and ".." not in session_id:
        return None
    return f"session id {session_id!r} is not a safe session id (expected {SESSION_ID_RULE})"


def table_row(uri: str, index: int) -> str:
    """Where row `index` (0-based, header not counted) of a table is, as a person looks it up."""
    if uri.lower().endswith((".parquet", ".pq")):
        return f"{uri} (row {index + 1})"
    return f"{uri} (line {index + 2})"


def session_folder(spec: DatasetSpec, session_id: str) -> str:
    """The session's folder; RawDataError (naming the sessions table) for an unsafe id, which
    could name a folder holding other sessions or lying outside the sessions' folder."""
    problem = session_id_problem(session_id)
    if problem:
        raise RawDataError(spec.sessions.table, problem)
    return spec.sessions.folder.replace("{session_id}", session_id).strip("/")


def session_key(spec: DatasetSpec, session_id: str, name: str = "") -> str:
    folder = session_folder(spec, session_id)
    return f"{folder}/{name}" if name else folder


def stream_key(spec: DatasetSpec, session_id: str, stream: str, listing: list[str] | None) -> str:
    """Object key of one stream's file; a glob pattern must match exactly one file."""
    path = spec.streams[stream].path
    key = session_key(spec, session_id, path)
    if not any(ch in path for ch in "*?["):
        return key
    folder = session_folder(spec, session_id) + "/"
    matches = sorted(k for k in (listing or []) if k.startswith(folder) and fnmatch.fnmatch(k, key))
    if len(matches) != 1:
        raise RawDataError(
            key,
            f"pattern {path!r} matches {len(matches)} files"
            + (f": {matches[:5]}" if matches else ""),
        )
    return matches[0]


def read_clock_file(
    store: Any, spec: DatasetSpec, session_id: str
) -> tuple[dict[str, ClockModel], dict[str, dict[str, Any]]]:
    """Starting-guess clocks per stream and each stream's raw clock-file entry.

    Streams declared `clock.initial: zero`, the reference, and streams absent from the file
    start at offset 0 and drift 0. Without a clock file every stream does.
    """
    entries: dict[str, dict[str, Any]] = {}
    believed: dict[str, ClockModel] = {}
    if spec.sessions.clock_file:
        key = session_key(spec, session_id, spec.sessions.clock_file)
        try:
            streams = json.loads(fetch_bytes(store, key))["streams"]
            if not isinstance(streams, dict):
                raise TypeError("'streams' must be a mapping of stream name to clock")
            for name, entry in streams.items():
                if not isinstance(entry, dict):
                    raise TypeError(f"streams.{name} must be a mapping")
                entries[str(name)] = dict(entry)
                believed[str(name)] = ClockModel(
                    float(entry.get("offset_s", 0.0)), float(entry.get("drift_ppm", 0.0))
                )
        except RawDataError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RawDataError(store.uri(key), f"invalid clock file ({exc!r})") from None
    clocks = {
        name: ClockModel()
        if name == spec.reference or s.clock.initial == "zero"
        else believed.get(name, ClockModel())
        for name, s in spec.streams.items()
    }
    return clocks, entries


def read_start_time(store: Any, spec: DatasetSpec, session_id: str, stream: str) -> float:
    """The start time a device wrote in its own start file (streams.<name>.clock.start_file).

    RawDataError names the file: missing, not JSON, no such field, or not a finite number.
    """
    clock = spec.streams[stream].clock
    key = session_key(spec, session_id, clock.start_file)
    uri = store.uri(key)
    try:
        value: Any = json.loads(fetch_bytes(store, key))
    except ValueError as exc:
        raise RawDataError(uri, f"start file is not JSON ({exc})") from None
    for part in clock.start_field.split("."):
        if not isinstance(value, dict) or part not in value:
            raise RawDataError(uri, f"start file has no field {clock.start_field!r}")
        value = value[part]
    try:
        start = float(value)
    except (TypeError, ValueError):
        start = float("nan")
    if isinstance(value, bool) or not np.isfinite(start):
        raise RawDataError(
            uri, f"start file field {clock.start_field!r} is {value!r}; expected seconds (a number)"
        )
    return start


def start_file_clock(store: Any, spec: DatasetSpec, session_id: str, stream: str) -> ClockModel:
    """The starting-guess clock of a stream that declares a start file (RawDataError if unreadable).

    A device that started at s_dev on a clock where the reference started at s_ref reads
    t_device = t_ref - (s_dev - s_ref), so offset_s = s_ref - s_dev. s_ref is the reference's
    own start file when it declares one, else 0 (start times already on the reference clock).
    """
    ref = spec.reference
    ref_start = (
        read_start_time(store, spec, session_id, ref) if spec.streams[ref].clock.start_file else 0.0
    )
    return ClockModel(ref_start - read_start_time(store, spec, session_id, stream))


def read_labels(
    store: Any, spec: DatasetSpec, session_id: str, session_row: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Label intervals (start_s, end_s, label) on the reference clock, with declared classes only.

    A session-level label becomes one interval covering all time.
    """
    ls = spec.labels
    classes = set(ls.classes)
    if ls.source == "session":
        value = None if session_row is None else session_row.get(ls.column)
        where = f"{store.uri(spec.sessions.table)} (session {session_id}, column {ls.column})"
        if value is None or (isinstance(value, float) and np.isnan(value)) or str(value) == "":
            raise RawDataError(where, NO_LABEL)
        if str(value) not in classes:
            raise RawDataError(where, f"unknown label {str(value)!r}; expected one of {ls.classes}")
        return pd.DataFrame({"start_s": [-np.inf], "end_s": [np.inf], "label": [str(value)]})
    key = session_key(spec, session_id, ls.path)
    uri = store.uri(key)
    df = read_table(fetch_bytes(store, key), uri)
    cols = [ls.start_column, ls.end_column, ls.label_column]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise RawDataError(uri, f"label table needs columns {cols}; missing {missing}")
    try:
        out = pd.DataFrame(
            {
                "start_s": pd.to_numeric(df[ls.start_column], errors="raise").astype(float),
                "end_s": pd.to_numeric(df[ls.end_column], errors="raise").astype(float),
                "label": df[ls.label_column].astype(str),
            }
        )
    except (ValueError, TypeError) as exc:
        raise RawDataError(uri, f"label times must be numbers ({exc})") from None
    bad = ~(out["end_s"] > out["start_s"])
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise RawDataError(
            uri,
            f"{int(bad.sum())} label intervals do not end after they start (first at line {line})",
        )
    unknown = sorted(set(out["label"]) - classes)
    if unknown:
        line = int(np.flatnonzero(~out["label"].isin(classes).to_numpy())[0]) + 2
        raise RawDataError(
            uri, f"unknown labels {unknown} (first at line {line}); expected one of {ls.classes}"
        )
    return out.sort_values("start_s", kind="stable").reset_index(drop=True)


def session_labels(
    store: Any,
    spec: DatasetSpec,
    session_id: str,
    session_row: dict[str, Any] | None = None,
    corrections: pd.DataFrame | None = None,
    required: bool = True,
) -> pd.DataFrame:
    """The session's labels with its reviewed corrections laid over them (dataset.corrections).

    A session without a label table (or sessions-table label) is labelled where it was reviewed.
    With `required=False` (batch inference: new recordings need no labels) a session with neither
    gets an empty table, and an unreadable label table is ignored rather than raised.
    """
    mine = session_corrections(corrections, session_id)
    try:
        base = read_labels(store, spec, session_id, session_row)
    except RawDataError as err:
        if required and (mine.empty or err.problem not in (MISSING_FILE, NO_LABEL)):
            raise
        base = None
    return apply_corrections(base, mine)


def read_sync(store: Any, spec: DatasetSpec, session_id: str) -> dict[str, np.ndarray] | None:
    if not spec.sessions.sync_file:
        return None
    key = session_key(spec, session_id, spec.sessions.sync_file)
    if not store.exists(key):
        return None
    try:
        doc = json.loads(fetch_bytes(store, key))
        return {str(name): np.asarray(v, dtype=np.float64) for name, v in doc.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise RawDataError(store.uri(key), f"invalid sync markers ({exc!r})") from None


def stream_source(
    store: Any,
    spec: DatasetSpec,
    session_id: str,
    stream: str,
    clock_entries: dict[str, dict[str, Any]],
    listing: list[str] | None = None,
) -> StreamSource:
    """Where one stream of one session is, with its typed params (RawDataError on a bad pattern)."""
    s = spec.streams[stream]
    return StreamSource(
        store=store,
        session_id=session_id,
        name=stream,
        kind=s.kind,
        key=stream_key(spec, session_id, stream, listing),
        params=spec.params(stream),
        clock=clock_entries.get(stream, {}),
    )


def list_session(store: Any, spec: DatasetSpec, session_id: str) -> list[str] | None:
    """Keys in the session folder when some stream path is a pattern (one listing), else None."""
    if any(any(ch in s.path for ch in "*?[") for s in spec.streams.values()):
        return store.list(session_folder(spec, session_id))
    return None


def load_session(
    store: Any,
    spec: DatasetSpec,
    session_id: str,
    meta: dict[str, Any],
    session_row: dict[str, Any] | None = None,
    skip: frozenset[str] = frozenset(),
    corrections: pd.DataFrame | None = None,
    labels_required: bool = True,
) -> SessionStreams:
    """Read one session. Clock file and labels are required (RawDataError) unless
    `labels_required` is False; reviewed `corrections` are applied over the labels. A bad stream
    becomes None with its error in `problems`, so the caller decides whether the session is
    usable. Streams in `skip` (quarantined at ingest, with their reason on record) are not read."""
    clocks, entries = read_clock_file(store, spec, session_id)
    labels = session_labels(store, spec, session_id, session_row, corrections, labels_required)
    session = SessionStreams(session_id=session_id, meta=meta, clocks=clocks, labels=labels)
    listing = list_session(store, spec, session_id)
    for name, s in spec.streams.items():
        if name in skip:
            session.streams[name] = None
            continue
        try:
            if s.clock.start_file and name != spec.reference:
                session.clocks[name] = start_file_clock(store, spec, session_id, name)
            src = stream_source(store, spec, session_id, name, entries, listing)
            session.streams[name] = get_kind(s.kind).read.read(src)
        except RawDataError as err:
            session.streams[name] = None
            session.problems.append((name, err))
    try:
        session.sync = read_sync(store, spec, session_id)
    except RawDataError as err:
        session.problems.append(("sync", err))
    return session
