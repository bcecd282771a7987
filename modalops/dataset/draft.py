"""`modalops dataset init`: draft a dataset spec from a folder of recordings.

Guesses, which the user then reads and corrects: the session folders (the level with the most
sibling folders of similar content), the sessions table (a root table whose column holds those
folder names), each stream's kind from its extension and header, rates from timestamps, the
label source and classes, and metadata roles from column names and cardinality.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from modalops.dataset.layout import read_table
from modalops.kinds import get_kind, kind_names

_TIME_NAMES = ("t", "time", "timestamp", "ts", "t_s", "time_s", "seconds", "time_ms", "timestamp_ms",
               "t_ms", "ms", "time_us", "time_ns", "datetime")  # fmt: skip
_SUBJECT_NAMES = ("subject", "subject_id", "participant", "person", "user", "operator", "patient",
                  "speaker", "driver", "worker", "animal")  # fmt: skip
_LABEL_NAMES = ("label", "class", "activity", "target", "y", "category", "state")
_INDEX_COLUMNS = ("file", "filename", "frame_file", "path", "image")


def _unit_of(name: str, steps: np.ndarray) -> str:
    lower = name.lower()
    for unit in ("ns", "us", "ms"):
        if lower.endswith(unit) or f"_{unit}" in lower:
            return unit
    step = float(np.median(steps)) if steps.size else 1.0
    # a median step above 5 "seconds" at typical sensor rates is more likely milliseconds
    return "ms" if 5.0 < step < 5000.0 and name.lower() not in ("t", "time_s", "seconds") else "s"


def _time_column(df: pd.DataFrame) -> str | None:
    cols = {c.lower(): c for c in df.columns}
    for name in _TIME_NAMES:
        if name in cols and pd.api.types.is_numeric_dtype(df[cols[name]]):
            return cols[name]
    for c in df.columns:  # first strictly increasing numeric column
        if (
            pd.api.types.is_numeric_dtype(df[c])
            and len(df) > 2
            and np.all(np.diff(df[c].to_numpy()) > 0)
        ):
            return c
    return None


def _session_level(keys: list[str]) -> tuple[str, list[str]] | None:
    """(folder pattern prefix, session ids): the folder whose sub-folders look most alike."""
    children: dict[str, set[str]] = {}
    for key in keys:
        parts = PurePosixPath(key).parts
        for depth in range(len(parts) - 1):
            parent = "/".join(parts[:depth])
            children.setdefault(parent, set()).add(parts[depth])
    best = None
    for parent, kids in children.items():
        dirs = [
            k
            for k in kids
            if any(key.startswith(f"{parent}/{k}/" if parent else f"{k}/") for key in keys)
        ]
        if len(dirs) >= 2 and (best is None or len(dirs) > len(best[1])):
            best = (parent, sorted(dirs))
    return best


def _guess_timeseries(data: bytes, key: str) -> dict[str, Any] | None:
    try:
        df = read_table(data, key)
    except Exception:  # noqa: BLE001 - a table we cannot read is reported, not guessed
        return None
    tcol = _time_column(df)
    if tcol is None:
        return None
    times = df[tcol].to_numpy(dtype=np.float64)
    steps = np.diff(times)
    unit = _unit_of(tcol, steps)
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    step = float(np.median(steps)) * scale if steps.size else 0.0
    channels = [c for c in df.columns if c != tcol and pd.api.types.is_numeric_dtype(df[c])]
    if not channels:
        return None
    params: dict[str, Any] = {"time_column": tcol, "channels": channels,
                              "sample_rate": round(1.0 / step, 3) if step > 0 else 1.0}  # fmt: skip
    if unit != "s":
        params["time_unit"] = unit
    return params


def _guess_text(data: bytes) -> dict[str, Any] | None:
    for line in data.decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            return None
        if not isinstance(rec, dict):
            return None
        tfield = next(
            (k for k in rec if k.lower() in _TIME_NAMES and isinstance(rec[k], (int, float))), None
        )
        xfield = next((k for k, v in rec.items() if isinstance(v, str)), None)
        if tfield is None or xfield is None:
            return None
        return {"time_field": tfield, "text_field": xfield}
    return None


def _guess_audio(data: bytes, key: str) -> dict[str, Any]:
    if key.lower().endswith(".wav"):
        import wave

        try:
            with wave.open(io.BytesIO(data), "rb") as w:
                return {"sample_rate": int(w.getframerate())}
        except (wave.Error, EOFError):
            return {}
    return {}


_START_NAMES = ("start_time_s", "start_s", "start_time", "start", "t0", "t_start", "started_at_s")


def _start_field(data: bytes) -> str | None:
    """The field of a small JSON object that looks like a device's start time (a number)."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    for name in _START_NAMES:
        value = doc.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return name
    return None


def draft_spec(store: Any, name: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """A draft spec document for the recordings under `store`, and hints on what was guessed."""
    hints: list[str] = []
    keys = [k for k in store.list("") if not k.startswith(("truth/", ".")) and k != "dataset.yaml"]
    level = _session_level(keys)
    if level is None:
        raise ValueError(
            f"{store.uri()}: found no session folders (expected <folder>/<session>/<files>)"
        )
    parent, sessions = level
    folder = f"{parent}/{{session_id}}" if parent else "{session_id}"
    hints.append(f"{len(sessions)} session folders under {parent or '(root)'}/")

    # ---- sessions table ------------------------------------------------------------------
    table_key, id_column, table = None, "session_id", None
    for key in keys:
        if "/" in key or not key.lower().endswith((".csv", ".tsv", ".parquet")):
            continue
        try:
            df = read_table(
                store.get_bytes(key), key, **({} if key.endswith(".parquet") else {"dtype": str})
            )
        except Exception:  # noqa: BLE001
            continue
        for col in df.columns:
            if len(set(df[col].astype(str)) & set(sessions)) >= 0.8 * len(sessions):
                table_key, id_column, table = key, col, df
                break
        if table is not None:
            break
    if table is None:
        hints.append("no sessions table found: write one at the root with a session_id column")
        table_key = "sessions.csv"

    # ---- files per session -----------------------------------------------------------------
    rel = Counter()
    for sid in sessions:
        prefix = f"{parent}/{sid}/" if parent else f"{sid}/"
        for key in keys:
            if key.startswith(prefix):
                rel[key[len(prefix) :]] += 1
    first = sessions[0]
    base = f"{parent}/{first}/" if parent else f"{first}/"
    streams: dict[str, Any] = {}
    labels: dict[str, Any] | None = None
    clock_file = None
    start_files: dict[str, tuple[str, str]] = {}  # file stem -> (path, start field)
    image_dirs: Counter = Counter()
    for path in rel:
        ext = PurePosixPath(path).suffix.lower()
        if ext in get_kind("image").extensions and "/" in path:
            image_dirs[path.rsplit("/", 1)[0]] += 1
    for path, count in sorted(rel.items()):
        if count < 0.5 * len(sessions):
            continue
        ext = PurePosixPath(path).suffix.lower()
        folder_of = path.rsplit("/", 1)[0] if "/" in path else ""
        stem = re.sub(r"[^a-z0-9_]+", "_", PurePosixPath(path).stem.lower()).strip("_") or "stream"
        if stem[0].isdigit():
            stem = f"s_{stem}"
        if ext in get_kind("image").extensions:
            continue  # frames are found through their index
        if ext == ".json":
            if "clock" in path.lower():
                clock_file = path
            elif (base + path) in keys:
                field = _start_field(store.get_bytes(base + path))
                if field:
                    start_files[stem] = (path, field)
            continue
        data = store.get_bytes(base + path) if (base + path) in keys else None
        if data is None:
            continue
        if ext in (".csv", ".tsv", ".parquet"):
            try:
                df = read_table(data, path)
            except Exception:  # noqa: BLE001
                continue
            lower = {c.lower(): c for c in df.columns}
            if folder_of in image_dirs and any(c in lower for c in _INDEX_COLUMNS):
                fcol = next(lower[c] for c in _INDEX_COLUMNS if c in lower)
                tcol = _time_column(df) or "t"
                streams[folder_of.replace("/", "_") or stem] = {
                    "kind": "image", "path": path,
                    "params": {"time_column": tcol, "file_column": fcol},
                }  # fmt: skip
                continue
            starts = [
                c
                for c in df.columns
                if c.lower() in ("start", "start_s", "begin", "onset", "t_start")
            ]
            ends = [
                c for c in df.columns if c.lower() in ("end", "end_s", "stop", "offset", "t_end")
            ]
            labs = [c for c in df.columns if c.lower() in _LABEL_NAMES]
            if starts and ends and labs:
                classes = list(dict.fromkeys(df[labs[0]].astype(str)))
                labels = {"classes": classes, "source": "intervals", "path": path,
                          "start_column": starts[0], "end_column": ends[0], "label_column": labs[0]}  # fmt: skip
                continue
            params = _guess_timeseries(data, path)
            if params:
                streams[stem] = {"kind": "timeseries", "path": path, "params": params}
        elif ext in get_kind("audio").extensions:
            streams[stem] = {"kind": "audio", "path": path, "params": _guess_audio(data, path)}
        elif ext in get_kind("video").extensions:
            streams[stem] = {"kind": "video", "path": path, "params": {}}
        elif ext in get_kind("text").extensions:
            params = _guess_text(data)
            if params:
                streams[stem] = {"kind": "text", "path": path, "params": params, "required": False}
    if not streams:
        raise ValueError(f"{store.uri()}: no stream files recognised (kinds: {kind_names()})")
    # classes found in every session's label table, not only the first one's
    if labels is not None:
        seen: list[str] = []
        for sid in sessions:
            key = (f"{parent}/{sid}/" if parent else f"{sid}/") + labels["path"]
            if key in keys:
                try:
                    seen += list(
                        read_table(store.get_bytes(key), key)[labels["label_column"]].astype(str)
                    )
                except Exception:  # noqa: BLE001, S110 - `dataset check` reports unreadable tables
                    continue
        labels["classes"] = list(dict.fromkeys(seen or labels["classes"]))

    # ---- metadata and session-level labels ----------------------------------------------------
    metadata: dict[str, Any] = {"columns": [], "slices": []}
    if table is not None:
        for col in table.columns:
            if col == id_column:
                continue
            values = table[col].dropna().astype(str)
            n = values.nunique()
            if col.lower() in _SUBJECT_NAMES:
                metadata["subject"] = col
            elif labels is None and col.lower() in _LABEL_NAMES and 2 <= n <= 50:
                labels = {
                    "classes": list(dict.fromkeys(values)),
                    "source": "session",
                    "column": col,
                }
            elif 1 < n <= max(2, len(table) // 2) and n <= 50:
                metadata["columns"].append(col)
                metadata["slices"].append(col)
        if labels is None:
            candidates = [c for c in metadata["columns"] if 2 <= table[c].nunique() <= 12]
            if candidates:
                col = candidates[0]
                labels = {"classes": list(dict.fromkeys(table[col].dropna().astype(str))),
                          "source": "session", "column": col}  # fmt: skip
                metadata["columns"].remove(col)
                metadata["slices"].remove(col)
                hints.append(f"labels guessed from sessions-table column {col!r}: check it")
    if labels is None:
        labels = {"classes": ["CLASS_A", "CLASS_B"], "source": "intervals", "path": "labels.csv"}
        hints.append("no labels found: fill in labels (intervals table per session, or a column)")
    order = {"image": 0, "video": 1, "audio": 2, "timeseries": 3, "text": 4}
    reference = min(streams, key=lambda s: (order.get(streams[s]["kind"], 9), s))
    for s, body in streams.items():
        body.setdefault("cue", "none")
        if s != reference:
            body["clock"] = {"initial": "file" if clock_file else "zero", "estimate": False}
        if s in start_files:  # a device's own start-time file, named like its stream
            path, field = start_files.pop(s)
            body.setdefault("clock", {}).update(start_file=path, start_field=field)
            hints.append(
                f"{s}: start time from {path} ({field}); check it is on the reference's clock"
            )
    for path, _field in start_files.values():
        hints.append(f"{path} looks like a device's start-time file but names no stream: declare it "
                     "as clock.start_file of the stream it belongs to")  # fmt: skip
    hints.append(
        f"reference stream {reference!r}; clocks not estimated: declare a sync cue on the "
        "reference and a stream (and clock.estimate: true) to recover offsets from the data"
    )
    doc: dict[str, Any] = {
        "name": name or (PurePosixPath(store.uri().rstrip("/")).name or "dataset"),
        "sessions": {"table": table_key, "id_column": id_column, "folder": folder,
                     **({"clock_file": clock_file} if clock_file else {})},
        "reference": reference,
        "streams": streams,
        "labels": labels,
        "metadata": metadata,
    }  # fmt: skip
    return doc, hints
