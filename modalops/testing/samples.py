"""Builders of tiny aligned-sample tables and catalogs for any dataset spec (validate tests).

Payloads follow the shared contract per kind: image/video = JPEG bytes, audio = PCM16 WAV bytes,
timeseries = `.npy` float32 (n, C), text = str. Nothing here knows a dataset: every name comes
from the spec passed in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from PIL import Image

from modalops.dataset.columns import payload_column, presence_column, sample_columns
from modalops.kinds.audio.wav import encode_wav
from modalops.kinds.timeseries.window import npy_bytes
from modalops.kinds.video.window import encode_jpeg


def jpeg(
    seed: int, size: tuple[int, int] = (64, 64), flat: int | None = None, dark: bool = False
) -> bytes:
    """A JPEG: smooth random blobs plus texture (a distinct perceptual hash per seed); `flat`: one
    grey level (blank, no edges); `dark`: textured but almost black."""
    rng = np.random.default_rng(seed)
    w, h = size
    if dark:
        arr = rng.integers(0, 9, size=(h, w, 3), dtype=np.uint8)
    elif flat is not None:
        arr = np.full((h, w, 3), flat, dtype=np.uint8)
    else:
        coarse = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(coarse).resize((w, h), Image.BILINEAR)
        arr = np.asarray(img).astype(np.int16) + rng.integers(-20, 20, size=(h, w, 3))
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return encode_jpeg(arr, quality=90)


def wav(seed: int, rate: int = 16000, seconds: float = 1.0, amp: float = 0.1) -> bytes:
    """PCM16 mono WAV of Gaussian noise with standard deviation `amp` (full scale 1)."""
    rng = np.random.default_rng(seed)
    return encode_wav(rng.normal(0, amp, int(rate * seconds)), rate)


def table(seed: int, rows: int, channels: int) -> np.ndarray:
    """A (rows, channels) float32 table of unit Gaussian noise."""
    return np.random.default_rng(seed).normal(0, 1, size=(rows, channels)).astype(np.float32)


def payload_for(spec, stream: str, seed: int, window_s: float, text: str = "") -> object:
    """A clean payload of `stream` for one window, sized from the spec's params and checks."""
    kind, params, checks = spec.streams[stream].kind, spec.params(stream), spec.checks(stream)
    if kind in ("image", "video"):
        size = checks.frame_size or (params.width, params.height)
        return jpeg(seed, size=tuple(size))
    if kind == "audio":
        return wav(seed, rate=checks.file_rate or params.sample_rate, seconds=window_s)
    if kind == "timeseries":
        rows = int(round(params.sample_rate * window_s))
        return npy_bytes(table(seed, rows, len(params.channels)))
    if kind == "text":
        return text
    raise ValueError(f"no payload builder for kind {kind!r}")


def default_meta(session: int, column: str) -> str:
    return f"{column}-{session % 2}"


def make_samples(
    spec,
    n_sessions: int = 6,
    windows: int = 25,
    window_s: float = 1.0,
    label_of: Callable[[int, int], str | None] | None = None,
    meta_of: Callable[[int, str], str] = default_meta,
    text_of: Callable[[int, int], str] | None = None,
    align_confidence: float = 8.0,
) -> pd.DataFrame:
    """An aligned-sample table (`columns.sample_columns(spec)`) with a clean payload per stream.

    `label_of(session, window)` defaults to cycling through the spec's classes with the first
    class twice as common; `text_of(session, window)` gives text streams' payloads (default:
    a short note every fifth window, "" otherwise: absent).
    """
    classes = list(spec.labels.classes)
    cycle = [classes[0], *classes]
    label_of = label_of or (lambda s, w: cycle[w % len(cycle)])
    text_of = text_of or (lambda s, w: "checked, all ok" if w % 5 == 0 else "")
    rows = []
    for s in range(n_sessions):
        for w in range(windows):
            seed = s * 1000 + w
            row: dict[str, object] = {
                "session_id": f"s{s:02d}",
                "window_index": w,
                "t_start": w * window_s,
                "t_end": (w + 1) * window_s,
                "label": label_of(s, w),
                "label_overlap": 1.0,
                "boundary": False,
                "align_confidence": align_confidence,
            }
            for stream in spec.stream_names:
                value = payload_for(spec, stream, seed, window_s, text_of(s, w))
                row[payload_column(stream)] = value
                row[presence_column(stream)] = (
                    bool(value) if spec.streams[stream].kind == "text" else True
                )
            for col in spec.metadata.columns:
                row[col] = meta_of(s, col)
            if spec.metadata.subject:
                row["subject"] = f"subj{s}"
            rows.append(row)
    return pd.DataFrame(rows, columns=sample_columns(spec))


def make_catalog(samples: pd.DataFrame, spec, duration_s: float | None = None) -> pd.DataFrame:
    """A clean ingest catalog (the shared contract's columns) for the sessions of `samples`:
    one row per stream of the spec, plus the session's clock and label files."""
    rows = []
    if duration_s is None:
        duration_s = float(samples["t_end"].max()) if len(samples) else 0.0
    for sid in samples["session_id"].unique():
        entries = [(s, spec.streams[s].kind) for s in spec.stream_names]
        for stream, kind in [*entries, ("labels", "labels"), ("clock", "clock")]:
            rate = np.nan
            width = height = np.nan
            channels = np.nan
            flat = np.nan
            nan_fraction = np.nan
            if kind in ("audio", "timeseries"):
                params = spec.params(stream)
                rate = float(params.sample_rate)
                if kind == "audio" and spec.checks(stream).file_rate:
                    rate = float(spec.checks(stream).file_rate)
                channels = float(len(params.channels)) if kind == "timeseries" else 1.0
                flat, nan_fraction = 0.0, 0.0
            elif kind in ("image", "video"):
                rate = 4.0
                size = spec.checks(stream).frame_size or (
                    spec.params(stream).width,
                    spec.params(stream).height,
                )
                width, height = size
            row = {
                "session_id": sid,
                "stream": stream,
                "kind": kind,
                "key": f"sessions/{sid}/{stream}",
                "uri": f"/raw/sessions/{sid}/{stream}",
                "content_hash": "abc",
                "n_bytes": 100,
                "duration_s": duration_s,
                "sample_rate": rate,
                "n_items": 10,
                "t_first": 0.0,
                "t_last": duration_s,
                "nan_fraction": nan_fraction,
                "n_bad_items": 0,
                "width": width,
                "height": height,
                "n_channels": channels,
                "flat_channels": flat,
                "status": "ok",
                "reason": None,
            }
            for col in spec.meta_columns:
                row[col] = f"{col}-0"
            rows.append(row)
    return pd.DataFrame(rows)
