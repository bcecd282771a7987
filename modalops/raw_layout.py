"""Readers of the raw recording layout (docs/data-layout.md), shared by ingestion and alignment.

Every reader raises RawDataError naming the file and the problem; callers quarantine on it.
"""

from __future__ import annotations

import io
import json
import wave
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from modalops import schema
from modalops.store import ObjectStore, join_key


class RawDataError(ValueError):
    """A raw file is missing or unreadable; `path` names it, `problem` says what is wrong."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


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
class CameraStream:
    times: np.ndarray  # float64 seconds, camera device clock, one per frame
    files: list[str]  # object keys (relative to the raw root) of each frame's JPEG


@dataclass
class AudioStream:
    samples: np.ndarray  # float32 in [-1, 1], mono
    sample_rate: int
    start_s: float  # device-clock time of the first sample


@dataclass
class VibrationStream:
    times: np.ndarray  # float64 seconds, device clock
    values: np.ndarray  # float32 (n, 3): ax, ay, az


@dataclass
class NotesStream:
    times: np.ndarray  # float64 seconds, device clock (coarse)
    texts: list[str]


@dataclass
class SessionStreams:
    """Everything recorded in one session; a stream that could not be read is None."""

    session_id: str
    meta: dict[str, Any]
    clocks: dict[str, ClockModel]  # metadata clocks from clock.json (may be wrong)
    labels: pd.DataFrame  # start_s, end_s, label on the reference clock
    camera: CameraStream | None = None
    audio: AudioStream | None = None
    vibration: VibrationStream | None = None
    notes: NotesStream | None = None
    sync: dict[str, np.ndarray] | None = None  # explicit sync markers per stream, device clocks
    problems: list[RawDataError] = field(default_factory=list)  # per-stream read failures

    def stream(self, modality: str):
        return getattr(self, modality)


def session_key(session_id: str, name: str = "") -> str:
    return join_key(schema.SESSIONS_DIR, session_id, name)


# ---- single-file readers ---------------------------------------------------------------------


def _get(store: ObjectStore, key: str) -> bytes:
    try:
        return store.get_bytes(key)
    except FileNotFoundError:
        raise RawDataError(store.uri(key), "file is missing") from None


def _read_csv(store: ObjectStore, key: str, **kwargs) -> pd.DataFrame:
    data = _get(store, key)
    try:
        return pd.read_csv(io.BytesIO(data), **kwargs)
    except Exception as exc:  # pandas raises several parser errors
        raise RawDataError(store.uri(key), f"not a readable CSV ({exc})") from None


def read_manifest(store: ObjectStore) -> pd.DataFrame:
    key = schema.SESSIONS_MANIFEST
    df = _read_csv(store, key, dtype={"session_id": str, "subject_id": str})
    missing = [c for c in schema.MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise RawDataError(store.uri(key), f"missing columns {missing}")
    if df["session_id"].duplicated().any():
        dups = sorted(df.loc[df["session_id"].duplicated(), "session_id"].unique())
        raise RawDataError(store.uri(key), f"duplicated session ids {dups}")
    return df


def read_clock(store: ObjectStore, session_id: str) -> tuple[dict[str, ClockModel], dict[str, Any]]:
    """Metadata clocks per stream, and the raw clock.json document (audio start, sample rate...)."""
    key = session_key(session_id, schema.CLOCK_FILE)
    try:
        doc = json.loads(_get(store, key))
        streams = doc["streams"]
        clocks = {
            name: ClockModel(float(s.get("offset_s", 0.0)), float(s.get("drift_ppm", 0.0)))
            for name, s in streams.items()
        }
    except RawDataError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RawDataError(store.uri(key), f"invalid clock metadata ({exc!r})") from None
    return clocks, doc


def _check_times(uri: str, times: np.ndarray, what: str) -> None:
    if times.size == 0:
        raise RawDataError(uri, f"{what}: no timestamps")
    if not np.all(np.isfinite(times)):
        raise RawDataError(uri, f"{what}: {int((~np.isfinite(times)).sum())} non-finite timestamps")
    steps = np.diff(times)
    if np.any(steps < 0):
        first = int(np.argmax(steps < 0)) + 1
        raise RawDataError(uri, f"{what}: timestamps out of order (first at row {first})")
    if np.any(steps == 0):
        first = int(np.argmax(steps == 0)) + 1
        raise RawDataError(uri, f"{what}: duplicated timestamps (first at row {first})")


def read_frames_index(store: ObjectStore, session_id: str) -> CameraStream:
    key = session_key(session_id, schema.FRAMES_INDEX)
    uri = store.uri(key)
    df = _read_csv(store, key)
    if not {"t", "file"} <= set(df.columns):
        raise RawDataError(uri, "frames index needs columns t, file")
    times = df["t"].to_numpy(dtype=np.float64)
    _check_times(uri, times, "frames index")
    files = [session_key(session_id, f"camera/{f}") for f in df["file"].astype(str)]
    return CameraStream(times=times, files=files)


def decode_wav(data: bytes, uri: str) -> tuple[np.ndarray, int]:
    """PCM16 mono WAV bytes -> float32 samples in [-1, 1] and the sample rate."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            n_channels, width, rate, n_frames = (
                wav.getnchannels(),
                wav.getsampwidth(),
                wav.getframerate(),
                wav.getnframes(),
            )
            raw = wav.readframes(n_frames)
    except (wave.Error, EOFError) as exc:
        raise RawDataError(uri, f"not a readable WAV ({exc})") from None
    if width != 2:
        raise RawDataError(uri, f"expected 16-bit PCM, got {8 * width}-bit")
    if len(raw) < n_frames * width * n_channels:
        got = len(raw) // (width * n_channels)
        raise RawDataError(uri, f"truncated WAV: header says {n_frames} frames, file holds {got}")
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if n_channels > 1:
        samples = samples.reshape(-1, n_channels).mean(axis=1)
    return samples, rate


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """PCM16 mono WAV bytes from int16 samples or floats in [-1, 1] (the inverse of decode_wav)."""
    if samples.dtype != np.int16:
        samples = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(sample_rate))
        wav.writeframes(samples.astype("<i2", copy=False).tobytes())
    return buf.getvalue()


def read_audio(store: ObjectStore, session_id: str, clock_doc: dict[str, Any]) -> AudioStream:
    key = session_key(session_id, schema.AUDIO_FILE)
    samples, rate = decode_wav(_get(store, key), store.uri(key))
    meta = clock_doc.get("streams", {}).get("audio", {})
    expected = meta.get("sample_rate")
    if expected is not None and int(expected) != rate:
        raise RawDataError(store.uri(key), f"sample rate {rate} Hz, clock.json says {expected} Hz")
    if samples.size == 0:
        raise RawDataError(store.uri(key), "no audio samples")
    return AudioStream(samples=samples, sample_rate=rate, start_s=float(meta.get("start_s", 0.0)))


def read_vibration(store: ObjectStore, session_id: str) -> VibrationStream:
    key = session_key(session_id, schema.VIBRATION_FILE)
    uri = store.uri(key)
    try:
        table = pq.read_table(io.BytesIO(_get(store, key)))
    except RawDataError:
        raise
    except Exception as exc:
        raise RawDataError(uri, f"not a readable Parquet file ({exc})") from None
    missing = [c for c in ("t", "ax", "ay", "az") if c not in table.column_names]
    if missing:
        raise RawDataError(uri, f"missing columns {missing}")
    times = table.column("t").to_numpy().astype(np.float64)
    _check_times(uri, times, "vibration")
    values = np.stack(
        [table.column(c).to_numpy(zero_copy_only=False) for c in ("ax", "ay", "az")], axis=1
    ).astype(np.float32)
    return VibrationStream(times=times, values=values)


def read_notes(store: ObjectStore, session_id: str) -> NotesStream:
    key = session_key(session_id, schema.NOTES_FILE)
    uri = store.uri(key)
    times, texts = [], []
    try:
        text = _get(store, key).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RawDataError(uri, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            times.append(float(rec["t"]))
            texts.append(str(rec["text"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise RawDataError(
                uri, f"line {lineno}: expected {{'t': float, 'text': str}} ({exc!r})"
            ) from None
    order = np.argsort(np.asarray(times, dtype=np.float64), kind="stable")
    # Notes are typed by people with coarse timestamps: order them rather than reject.
    return NotesStream(
        times=np.asarray(times, dtype=np.float64)[order], texts=[texts[i] for i in order]
    )


def read_labels(store: ObjectStore, session_id: str) -> pd.DataFrame:
    key = session_key(session_id, schema.LABELS_FILE)
    uri = store.uri(key)
    df = _read_csv(store, key)
    if not {"start_s", "end_s", "label"} <= set(df.columns):
        raise RawDataError(uri, "labels need columns start_s, end_s, label")
    df = df[["start_s", "end_s", "label"]].astype({"start_s": float, "end_s": float, "label": str})
    bad = df["end_s"] <= df["start_s"]
    if bad.any():
        raise RawDataError(uri, f"{int(bad.sum())} label intervals end before they start")
    return df.sort_values("start_s", kind="stable").reset_index(drop=True)


def read_sync(store: ObjectStore, session_id: str) -> dict[str, np.ndarray] | None:
    key = session_key(session_id, schema.SYNC_FILE)
    if not store.exists(key):
        return None
    try:
        doc = json.loads(_get(store, key))
        return {name: np.asarray(v, dtype=np.float64) for name, v in doc.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise RawDataError(store.uri(key), f"invalid sync markers ({exc!r})") from None


def load_session(store: ObjectStore, session_id: str, meta: dict[str, Any]) -> SessionStreams:
    """Read one session. Clock and labels are required (RawDataError); a bad stream becomes None
    with its error in `problems`, so the caller decides whether the session can still be used."""
    clocks, clock_doc = read_clock(store, session_id)
    labels = read_labels(store, session_id)
    session = SessionStreams(session_id=session_id, meta=meta, clocks=clocks, labels=labels)
    readers = {
        "camera": lambda: read_frames_index(store, session_id),
        "audio": lambda: read_audio(store, session_id, clock_doc),
        "vibration": lambda: read_vibration(store, session_id),
        "notes": lambda: read_notes(store, session_id),
    }
    for modality, reader in readers.items():
        try:
            setattr(session, modality, reader())
        except RawDataError as err:
            session.problems.append(err)
    try:
        session.sync = read_sync(store, session_id)
    except RawDataError as err:
        session.problems.append(err)
    return session
