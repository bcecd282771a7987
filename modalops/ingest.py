"""Ingest stage: scan the raw layout into a catalog (one row per session stream) plus quarantine rows.

Each file is read once: a caching view of the raw store lets the shared readers in
modalops.raw_layout parse a file while the same bytes are hashed here. A bad file becomes a
quarantined catalog row and a quarantine record; it never stops the scan.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from modalops import quarantine, schema
from modalops.config.data import IngestConfig
from modalops.quarantine import QuarantineRecord
from modalops.raw_layout import (
    RawDataError,
    read_audio,
    read_clock,
    read_frames_index,
    read_labels,
    read_manifest,
    read_notes,
    read_vibration,
    session_key,
)
from modalops.store import ObjectStore

STAGE = "ingest"
STREAMS = ("clock", "labels", "camera", "audio", "vibration", "notes")
STREAM_FILES = {
    "clock": schema.CLOCK_FILE,
    "labels": schema.LABELS_FILE,
    "camera": schema.FRAMES_INDEX,
    "audio": schema.AUDIO_FILE,
    "vibration": schema.VIBRATION_FILE,
    "notes": schema.NOTES_FILE,
}
CATALOG_COLUMNS: dict[str, str] = {
    "session_id": "string",
    "modality": "string",
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
    "n_corrupt_frames": "Int64",
    "width": "Int64",
    "height": "Int64",
    "flat_channels": "Int64",
    "status": "string",
    "reason": "string",
    **{c: "string" for c in schema.META_COLUMNS},
}
# A camera stream stays usable while most of its frames decode; beyond this share it is not.
MAX_CORRUPT_FRAME_FRACTION = 0.5
FETCH_THREADS = 8  # frame fetches are I/O-bound (S3 round trips), decoding is cheap


@dataclass
class IngestResult:
    """The catalog (CATALOG_COLUMNS) and the quarantine rows (modalops.quarantine columns)."""

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


def _sha256(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def _rate(times: np.ndarray) -> float | None:
    if times.size < 2:
        return None
    step = float(np.median(np.diff(times)))
    return 1.0 / step if step > 0 else None


def _decode_frame(data: bytes | None) -> tuple[tuple[int, int] | None, str | None]:
    """(width, height) of a decodable JPEG, or the reason it is not one."""
    if data is None:
        return None, "file is missing"
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "JPEG":
                return None, f"not a JPEG (Pillow sees {img.format})"
            img.load()  # decoding the entropy-coded data is what catches truncation
            return img.size, None
    except UnidentifiedImageError:
        # Pillow's own message embeds the buffer's memory address; keep reasons reproducible.
        return None, "not an image (unrecognised file header)"
    except (OSError, SyntaxError, ValueError) as exc:
        return None, f"not a decodable JPEG ({exc})"


def _fetch(store: ObjectStore, key: str) -> bytes | None:
    try:
        return store.get_bytes(key)
    except FileNotFoundError:
        return None


class _Session:
    """Catalog rows and quarantine records of one session, built stream by stream."""

    def __init__(self, raw: ObjectStore, session_id: str, meta: dict[str, Any]):
        self.raw = raw
        self.sid = session_id
        self.meta = meta
        self.rows: list[dict[str, Any]] = []
        self.records: list[QuarantineRecord] = []

    def row(self, modality: str, **values: Any) -> dict[str, Any]:
        key = session_key(self.sid, STREAM_FILES[modality])
        row = {"session_id": self.sid, "modality": modality, "key": key, "uri": self.raw.uri(key)}
        row.update(self.meta)
        row.update(status="ok", reason=None)
        row.update(values)
        self.rows.append(row)
        return row

    def reject(self, modality: str, err: RawDataError | str, uri: str | None = None) -> None:
        reason = str(err)
        self.row(modality, status="quarantined", reason=reason)
        self.records.append(
            QuarantineRecord(STAGE, self.sid, modality, uri or self.rows[-1]["uri"], reason)
        )


def _ingest_session(
    raw: _ReadOnce, sid: str, meta: dict[str, Any], pool: ThreadPoolExecutor
) -> _Session:
    out = _Session(raw.inner, sid, meta)

    # clock: required by the aligner; audio reads its start time and sample rate from it
    clock_doc: dict[str, Any] = {}
    try:
        clocks, clock_doc = read_clock(raw, sid)
        data = raw.cache[session_key(sid, schema.CLOCK_FILE)]
        out.row("clock", content_hash=_sha256(data), n_bytes=len(data), n_items=len(clocks))
    except RawDataError as err:
        out.reject("clock", err)

    try:
        labels = read_labels(raw, sid)
        unknown = sorted(set(labels["label"]) - set(schema.LABELS))
        if unknown:
            raise RawDataError(
                raw.uri(session_key(sid, schema.LABELS_FILE)),
                f"unknown labels {unknown}; expected one of {list(schema.LABELS)}",
            )
        data = raw.cache[session_key(sid, schema.LABELS_FILE)]
        t0, t1 = float(labels["start_s"].min()), float(labels["end_s"].max())
        out.row(
            "labels",
            content_hash=_sha256(data),
            n_bytes=len(data),
            n_items=len(labels),
            t_first=t0,
            t_last=t1,
            duration_s=t1 - t0,
        )
    except RawDataError as err:
        out.reject("labels", err)

    _ingest_camera(raw, out, pool)

    try:
        audio = read_audio(raw, sid, clock_doc)
        data = raw.cache[session_key(sid, schema.AUDIO_FILE)]
        n = int(audio.samples.size)
        out.row(
            "audio",
            content_hash=_sha256(data),
            n_bytes=len(data),
            duration_s=n / audio.sample_rate,
            sample_rate=float(audio.sample_rate),
            n_items=n,
            t_first=audio.start_s,
            t_last=audio.start_s + (n - 1) / audio.sample_rate,
            nan_fraction=0.0,  # PCM cannot hold NaN
        )
    except RawDataError as err:
        out.reject("audio", err)

    try:
        vib = read_vibration(raw, sid)
        data = raw.cache[session_key(sid, schema.VIBRATION_FILE)]
        finite = np.isfinite(vib.values)
        # A channel whose finite readings never change is a dead sensor (validation decides).
        flat = sum(
            1
            for c in range(vib.values.shape[1])
            if finite[:, c].sum() > 1 and np.ptp(vib.values[finite[:, c], c]) == 0.0
        )
        out.row(
            "vibration",
            content_hash=_sha256(data),
            n_bytes=len(data),
            duration_s=float(vib.times[-1] - vib.times[0]),
            sample_rate=_rate(vib.times),
            n_items=len(vib.times),
            t_first=float(vib.times[0]),
            t_last=float(vib.times[-1]),
            nan_fraction=float(1.0 - finite.mean()),
            flat_channels=flat,
        )
    except RawDataError as err:
        out.reject("vibration", err)

    try:
        notes = read_notes(raw, sid)
        data = raw.cache[session_key(sid, schema.NOTES_FILE)]
        has = len(notes.texts) > 0
        out.row(
            "notes",
            content_hash=_sha256(data),
            n_bytes=len(data),
            n_items=len(notes.texts),
            t_first=float(notes.times[0]) if has else None,
            t_last=float(notes.times[-1]) if has else None,
            duration_s=float(notes.times[-1] - notes.times[0]) if has else None,
        )
    except RawDataError as err:
        out.reject("notes", err)
    return out


def _ingest_camera(raw: _ReadOnce, out: _Session, pool: ThreadPoolExecutor) -> None:
    """Frames index plus every frame, each fetched once and decoded to prove it is readable."""
    try:
        cam = read_frames_index(raw, out.sid)
    except RawDataError as err:
        out.reject("camera", err)
        return
    index_bytes = raw.cache[session_key(out.sid, schema.FRAMES_INDEX)]
    blobs = list(pool.map(lambda k: _fetch(raw.inner, k), cam.files))
    h = hashlib.sha256(index_bytes)
    n_bytes, n_bad, sizes = len(index_bytes), 0, set()
    for key, data in zip(cam.files, blobs, strict=True):
        size, problem = _decode_frame(data)
        if problem is not None:
            n_bad += 1
            uri = raw.uri(key)
            out.records.append(QuarantineRecord(STAGE, out.sid, "camera", uri, f"{uri}: {problem}"))
            h.update(b"\0missing" if data is None else data)
            n_bytes += 0 if data is None else len(data)
            continue
        sizes.add(size)
        h.update(data)
        n_bytes += len(data)
    n = len(cam.files)
    width, height = sorted(sizes)[0] if sizes else (None, None)
    values = dict(
        content_hash=h.hexdigest(),
        n_bytes=n_bytes,
        duration_s=float(cam.times[-1] - cam.times[0]),
        sample_rate=_rate(cam.times),
        n_items=n,
        t_first=float(cam.times[0]),
        t_last=float(cam.times[-1]),
        n_corrupt_frames=n_bad,
        width=width,
        height=height,
    )
    index_uri = raw.uri(session_key(out.sid, schema.FRAMES_INDEX))
    if n_bad > MAX_CORRUPT_FRAME_FRACTION * n:
        reason = f"{index_uri}: {n_bad} of {n} frames are unreadable"
        out.row("camera", status="quarantined", reason=reason, **values)
        out.records.append(QuarantineRecord(STAGE, out.sid, "camera", index_uri, reason))
    elif len(sizes) > 1:
        reason = f"{index_uri}: frames have different sizes {sorted(sizes)}"
        out.row("camera", status="quarantined", reason=reason, **values)
        out.records.append(QuarantineRecord(STAGE, out.sid, "camera", index_uri, reason))
    else:
        out.row("camera", **values)


def _catalog_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=list(CATALOG_COLUMNS))
    return df.astype(CATALOG_COLUMNS)


def ingest_recordings(raw: ObjectStore, cfg: IngestConfig) -> IngestResult:
    """Scan every session listed in sessions.csv (at most cfg.max_sessions) into a catalog.

    Raises RawDataError only when sessions.csv itself is unreadable: without it there is no
    list of sessions to scan.
    """
    manifest = read_manifest(raw)
    if cfg.max_sessions is not None:
        manifest = manifest.head(cfg.max_sessions)
    # One listing tells which session directories exist (a HEAD per session is slow on S3).
    present = {k.split("/")[1] for k in raw.list(schema.SESSIONS_DIR) if k.count("/") >= 2}
    rows: list[dict[str, Any]] = []
    records: list[QuarantineRecord] = []
    reader = _ReadOnce(raw)
    with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
        for rec in manifest.to_dict("records"):
            sid = str(rec["session_id"])
            meta = {c: _text(rec.get(c)) for c in schema.META_COLUMNS if c != "subject"}
            meta["subject"] = pseudonymise(str(rec["subject_id"]), cfg.subject_salt)
            if sid not in present:
                session = _Session(raw, sid, meta)
                uri = raw.uri(session_key(sid))
                reason = (
                    f"{uri}: session directory is missing (listed in {schema.SESSIONS_MANIFEST})"
                )
                for modality in STREAMS:
                    session.row(modality, status="quarantined", reason=reason)
                session.records.append(QuarantineRecord(STAGE, sid, None, uri, reason))
            else:
                session = _ingest_session(reader, sid, meta, pool)
                reader.forget()
            rows += session.rows
            records += session.records
    listed = set(manifest["session_id"].astype(str))
    if cfg.max_sessions is None:
        for sid in sorted(present - listed):
            uri = raw.uri(session_key(sid))
            reason = f"{uri}: session directory not listed in {schema.SESSIONS_MANIFEST}"
            records.append(QuarantineRecord(STAGE, sid, None, uri, reason))
    return IngestResult(catalog=_catalog_frame(rows), quarantine=quarantine.to_frame(records))


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)
