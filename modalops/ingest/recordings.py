"""Ingest stage: scan a dataset's sessions into a catalog (one row per session item) plus
quarantine rows, as its dataset spec declares.

Each file is read once. Stream files are parsed by their kind from bytes it hashes itself; the
clock file and label table go through the shared layout readers, behind a caching view of the
raw store so the same bytes are hashed here. A bad file becomes a quarantined catalog row and
a quarantine record; it never stops the scan.
"""

from __future__ import annotations

import hashlib
import io
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pandas as pd

from modalops import quarantine
from modalops.config.data import IngestConfig
from modalops.dataset import layout
from modalops.dataset.corrections import corrections_digest, read_corrections, session_corrections
from modalops.dataset.errors import MISSING_FILE, RawDataError
from modalops.dataset.spec import DatasetSpec
from modalops.quarantine import QuarantineRecord
from modalops.store import ObjectStore

STAGE = "ingest"
ABSENT = "absent"  # catalog status of a labels row of a session nobody labelled yet
NOT_LABELLED = "not labelled yet"
# Catalog columns before the spec's metadata columns (all strings).
BASE_CATALOG_COLUMNS: dict[str, str] = {
    "session_id": "string",
    "stream": "string",
    "kind": "string",
    "key": "string",
    "uri": "string",
    "content_hash": "string",
    "n_bytes": "Int64",
    "duration_s": "Float64",
    "sample_rate": "Float64",
    "n_items": "Int64",
    "t_first": "Float64",
    "t_last": "Float64",
    "nan_fraction": "Float64",
    "n_bad_items": "Int64",
    "width": "Int64",
    "height": "Int64",
    "n_channels": "Int64",
    "flat_channels": "Int64",
    "status": "string",
    "reason": "string",
}


def catalog_columns(spec: DatasetSpec) -> dict[str, str]:
    """Every catalog column and its dtype: the base columns, then the spec's metadata columns."""
    return {**BASE_CATALOG_COLUMNS, **{c: "string" for c in spec.meta_columns}}


def session_items(spec: DatasetSpec) -> list[str]:
    """Catalog rows per session, in order: the clock file (if declared), labels, each stream."""
    return [*(["clock"] if spec.sessions.clock_file else []), "labels", *spec.stream_names]


@dataclass
class IngestResult:
    """The catalog (catalog_columns(spec)) and the quarantine rows (modalops.quarantine columns)."""

    catalog: pd.DataFrame
    quarantine: pd.DataFrame

    @property
    def ok(self) -> pd.DataFrame:
        return self.catalog[self.catalog["status"] == "ok"]


def pseudonymise(subject_id: str, salt: str) -> str:
    """Stable pseudonym of a subject id: the same id and salt always give the same pseudonym."""
    digest = hashlib.sha256(f"{salt}{subject_id}".encode()).hexdigest()
    return f"subj-{digest[:12]}"


class _ReadOnce(ObjectStore):
    """A view of a store that remembers the bytes it served, so a file parsed by a shared reader
    can be hashed without a second read. Forget between sessions to bound memory."""

    def __init__(self, inner: ObjectStore):
        self.inner = inner
        self.root = inner.root
        self.cache: dict[str, bytes] = {}

    def get_bytes(self, key: str) -> bytes:
        if key not in self.cache:
            self.cache[key] = self.inner.get_bytes(key)
        return self.cache[key]

    def forget(self) -> None:
        self.cache.clear()

    def put_bytes(self, key: str, data: bytes) -> str:
        raise PermissionError(f"ingest never writes to the raw store ({self.inner.uri(key)})")

    def exists(self, key: str) -> bool:
        return key in self.cache or self.inner.exists(key)

    def list(self, prefix: str = "") -> list[str]:
        return self.inner.list(prefix)

    def open_read(self, key: str) -> IO[bytes]:
        return io.BytesIO(self.get_bytes(key))

    def delete(self, key: str) -> None:
        raise PermissionError(f"ingest never deletes from the raw store ({self.inner.uri(key)})")

    def uri(self, key: str = "") -> str:
        return self.inner.uri(key)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


class _Session:
    """Catalog rows and quarantine records of one session, built item by item."""

    def __init__(self, raw: ObjectStore, spec: DatasetSpec, session_id: str, meta: dict[str, Any]):
        self.raw = raw
        self.spec = spec
        self.sid = session_id
        self.meta = meta
        self.rows: list[dict[str, Any]] = []
        self.records: list[QuarantineRecord] = []

    def key_of(self, item: str) -> str:
        spec = self.spec
        if item == "clock":
            return layout.session_key(spec, self.sid, spec.sessions.clock_file)
        if item == "labels":
            if spec.labels.source == "session":
                return spec.sessions.table
            return layout.session_key(spec, self.sid, spec.labels.path)
        return layout.session_key(spec, self.sid, spec.streams[item].path)

    def row(self, item: str, key: str | None = None, **values: Any) -> dict[str, Any]:
        key = key or self.key_of(item)
        kind = self.spec.streams[item].kind if item in self.spec.streams else item
        row = {
            "session_id": self.sid,
            "stream": item,
            "kind": kind,
            "key": key,
            "uri": self.raw.uri(key),
        }
        row.update(self.meta)
        row.update(status="ok", reason=None)
        row.update(values)
        self.rows.append(row)
        return row

    def reject(self, item: str, reason: str, key: str | None = None, **values: Any) -> None:
        row = self.row(item, key, status="quarantined", reason=reason, **values)
        self.records.append(QuarantineRecord(STAGE, self.sid, item, row["uri"], reason))


def _uri_reason(raw: ObjectStore, err: RawDataError) -> str:
    """The error's text, starting with a full URI even when the reader named a relative key."""
    root = raw.uri("")
    if err.path.startswith(root) or "://" in err.path or err.path.startswith("/"):
        return str(err)
    return f"{raw.uri(err.path)}: {err.problem}"


def _ingest_session(
    raw: ObjectStore, spec: DatasetSpec, sid: str, meta: dict[str, Any], row: dict[str, Any],
    listing: list[str], corrections: pd.DataFrame, labels_required: bool = True,
) -> _Session:  # fmt: skip
    out = _Session(raw, spec, sid, meta)
    cached = _ReadOnce(raw)

    # clock: the starting guesses; audio and video read their start times from it
    entries: dict[str, dict[str, Any]] = {}
    if spec.sessions.clock_file:
        try:
            clocks, entries = layout.read_clock_file(cached, spec, sid)
            data = cached.cache[out.key_of("clock")]
            out.row("clock", content_hash=_sha256(data), n_bytes=len(data), n_items=len(entries))
        except RawDataError as err:
            out.reject("clock", _uri_reason(raw, err))

    try:
        mine = session_corrections(corrections, sid)
        labels = layout.session_labels(cached, spec, sid, row, mine, labels_required)
        values: dict[str, Any] = {"n_items": len(labels)}
        # the label table's bytes and the reviews applied over it: a new review changes the hash
        data = (
            cached.cache.get(out.key_of("labels"), b"")
            if spec.labels.source == "intervals"
            else b""
        )
        if data or not mine.empty:
            digest = hashlib.sha256(data + corrections_digest(mine).encode()).hexdigest()
            values.update(content_hash=digest, n_bytes=len(data))
        if len(labels) or labels_required:
            t0, t1 = float(labels["start_s"].min()), float(labels["end_s"].max())
            values.update(t_first=_finite(t0), t_last=_finite(t1), duration_s=_finite(t1 - t0))
            out.row("labels", **values)
        else:
            out.row("labels", status=ABSENT, reason=NOT_LABELLED)
    except RawDataError as err:
        if err.problem in (MISSING_FILE, layout.NO_LABEL):
            # a recording nobody labelled (or reviewed) yet: not bad data, just not usable yet
            out.row("labels", status=ABSENT, reason=f"{_uri_reason(raw, err)} ({NOT_LABELLED})")
        else:
            out.reject("labels", _uri_reason(raw, err))
    cached.forget()

    for name in spec.stream_names:
        try:
            src = layout.stream_source(raw, spec, sid, name, entries, listing)
            if spec.streams[name].clock.start_file:
                layout.read_start_time(raw, spec, sid, name)  # its starting guess must be readable
        except RawDataError as err:
            out.reject(name, _uri_reason(raw, err))
            continue
        try:
            got = spec.kind_of(name).read.ingest(src)
        except RawDataError as err:
            out.reject(name, _uri_reason(raw, err), key=src.key)
            continue
        for uri, reason in got.item_problems:
            out.records.append(QuarantineRecord(STAGE, sid, name, uri, reason))
        if got.status == "quarantined":
            out.reject(name, got.reason or f"{src.uri()}: quarantined", key=src.key, **got.values)
        else:
            out.row(name, key=src.key, **got.values)
    return out


def _catalog_frame(spec: DatasetSpec, rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    cols = catalog_columns(spec)
    df = pd.DataFrame(list(rows), columns=list(cols))
    return df.astype(cols)


def _folders(raw: ObjectStore, spec: DatasetSpec) -> tuple[list[str], str]:
    """Every key under the sessions' common parent folder (one listing), and that parent."""
    parent = spec.sessions.folder.split("{session_id}")[0].strip("/")
    return raw.list(parent), parent


def _under(keys: list[str], folder: str) -> list[str]:
    """The keys of sorted `keys` inside `folder` (ending in '/'): a slice, not a scan of all keys."""
    # Keys starting with "a/b/" sort from "a/b/" up to, not including, "a/b0" ('0' follows '/').
    return keys[bisect_left(keys, folder) : bisect_left(keys, folder[:-1] + "0")]


def ingest_recordings(
    raw: ObjectStore,
    spec: DatasetSpec,
    cfg: IngestConfig,
    sessions: Sequence[str] | None = None,
    labels_required: bool = True,
) -> IngestResult:
    """Scan every session of the sessions table (at most cfg.max_sessions) into a catalog.

    `sessions` restricts the scan to those ids (batch inference); an id the table does not list
    is a quarantine row. With `labels_required=False` a session without labels is catalogued
    with its labels row `absent` instead of quarantined. Reviewed label corrections
    (dataset.corrections) are applied and hashed with the labels.

    Raises RawDataError only when the sessions table itself is unreadable: without it there is
    no list of sessions to scan.
    """
    table = layout.read_sessions(raw, spec)
    id_col = spec.sessions.id_column
    records: list[QuarantineRecord] = []
    if sessions is not None:
        wanted = [str(s) for s in sessions]
        ids = table[id_col].astype(str)
        for sid in sorted(set(wanted) - set(ids)):
            where = raw.uri(spec.sessions.table)
            records.append(
                QuarantineRecord(STAGE, sid, None, where, f"{where}: session {sid!r} not listed")
            )
        table = table[ids.isin(wanted)]
    if cfg.max_sessions is not None:
        table = table.head(cfg.max_sessions)
    corrections = read_corrections(raw, spec)
    # One listing tells which session folders exist (a HEAD per session is slow on S3) and
    # serves the glob patterns of stream paths.
    keys, parent = _folders(raw, spec)
    rows: list[dict[str, Any]] = []
    listed: set[str] = set()
    for index, rec in zip(table.index, table.to_dict("records"), strict=True):
        sid = str(rec[id_col])
        listed.add(sid)
        meta = {c: _text(rec.get(c)) for c in spec.metadata.columns}
        if spec.metadata.subject:
            meta["subject"] = pseudonymise(str(rec[spec.metadata.subject]), cfg.subject_salt)
        problem = layout.session_id_problem(sid)
        if problem:  # never turned into a folder: it could name other sessions' or none
            where = layout.table_row(raw.uri(spec.sessions.table), int(index))
            session = _whole_session_rejected(
                raw, spec, sid, meta, where, f"{where}: {problem}", spec.sessions.table
            )
        elif not (listing := _under(keys, layout.session_folder(spec, sid) + "/")):
            uri = raw.uri(layout.session_folder(spec, sid))
            reason = f"{uri}: session folder is missing (listed in {spec.sessions.table})"
            session = _whole_session_rejected(raw, spec, sid, meta, uri, reason)
        else:
            session = _ingest_session(
                raw, spec, sid, meta, rec, listing, corrections, labels_required
            )
        rows += session.rows
        records += session.records
    if cfg.max_sessions is None and sessions is None:
        records += unlisted_folders(raw, spec, listed, keys, parent)
    return IngestResult(catalog=_catalog_frame(spec, rows), quarantine=quarantine.to_frame(records))


def _whole_session_rejected(
    raw: ObjectStore, spec: DatasetSpec, sid: str, meta: dict[str, Any], uri: str, reason: str,
    key: str | None = None,
) -> _Session:  # fmt: skip
    """A session none of whose items can be read: every item quarantined, one record for it."""
    session = _Session(raw, spec, sid, meta)
    for item in session_items(spec):
        session.row(item, key=key, status="quarantined", reason=reason)
    session.records.append(QuarantineRecord(STAGE, sid, None, uri, reason))
    return session


def unlisted_folders(
    raw: ObjectStore,
    spec: DatasetSpec,
    listed: set[str],
    keys: list[str] | None = None,
    parent: str | None = None,
) -> list[QuarantineRecord]:
    """A folder under the sessions' parent that the table does not list is reported, not read.
    (Ingest over batches of sessions asks this once, with every id the batches listed.)"""
    if keys is None:
        keys, parent = _folders(raw, spec)
    if not parent:
        return []
    found = {
        k[len(parent) + 1 :].split("/", 1)[0]
        for k in keys
        if k.startswith(parent + "/") and k.count("/") > parent.count("/") + 1
    }
    records = []
    for sid in sorted(found - listed):
        problem = layout.session_id_problem(sid)
        if problem:  # not a name a session folder can have: said as found, never used as one
            uri = raw.uri(f"{parent}/{sid}")
            reason = f"{uri}: folder not listed in {spec.sessions.table}, and its {problem}"
        elif _under(keys, layout.session_folder(spec, sid) + "/"):
            uri = raw.uri(layout.session_folder(spec, sid))
            reason = f"{uri}: session folder not listed in {spec.sessions.table}"
        else:
            continue
        records.append(QuarantineRecord(STAGE, sid, None, uri, reason))
    return records


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)
