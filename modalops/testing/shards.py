"""Aligned-sample tables and shards built from any dataset spec, for shard/train tests and benchmarks.

Every stream's payload shows its window's class (a bright patch's position, a tone's pitch, the
channel that oscillates, a word), so a tiny model learns something in a few epochs; a few
payloads are missing and one window is an unlabelled boundary, as real aligned data has.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from modalops.config.pipeline import ShardConfig
from modalops.dataset import columns
from modalops.dataset.spec import DatasetSpec, spec_from_text
from modalops.kinds.audio.wav import encode_wav
from modalops.kinds.timeseries.window import npy_bytes
from modalops.store import ObjectStore

# Nothing like the demo: two grey 32x32 cameras, a 6-channel 50 Hz IMU, free text, 3 classes.
OTHER_SPEC_YAML = """
name: two-cams-imu
reference: top_cam
streams:
  top_cam:
    kind: image
    path: top/index.csv
    params: {width: 32, height: 32, channels: 1}
  side_cam:
    kind: image
    path: side/index.csv
    params: {width: 32, height: 32, channels: 1}
  wrist_imu:
    kind: timeseries
    path: imu.csv
    params: {time_column: ts, sample_rate: 50.0,
             channels: [acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z]}
  remarks:
    kind: text
    path: remarks.jsonl
    required: false
    params: {dim: 64}
labels:
  classes: [rest, reach, grasp]
  source: intervals
metadata:
  columns: [rig, operator_shift]
  subject: participant
  slices: [rig]
  stratify: rig
"""


def other_spec() -> DatasetSpec:
    """A spec with streams, kinds, classes and metadata that differ from the demo's."""
    return spec_from_text(OTHER_SPEC_YAML, "modalops/testing/shards.py (OTHER_SPEC_YAML)")


def image_payload(params: Any, cls: int, n_classes: int, rng: np.random.Generator) -> bytes:
    """A JPEG at the stream's size whose bright square sits in the class's column band."""
    h, w, c = params.height, params.width, params.channels
    img = (rng.random((h, w, 3)) * 40 + 60).astype(np.uint8)
    band = w // max(n_classes, 1)
    x0 = cls * band
    img[h // 3 : h // 3 + max(2, h // 4), x0 : x0 + max(2, band - 1)] = (230, 230, 230)
    pil = Image.fromarray(img)
    if c == 1:
        pil = pil.convert("L")
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def audio_payload(params: Any, window_s: float, cls: int, rng: np.random.Generator) -> bytes:
    """PCM16 WAV of one window: a hum plus a tone whose pitch names the class."""
    rate = int(params.sample_rate)
    t = np.arange(round(rate * window_s)) / rate
    x = 0.05 * np.sin(2 * np.pi * 120 * t) + 0.01 * rng.standard_normal(t.size)
    x += 0.3 * np.sin(2 * np.pi * min(rate / 2.5, 800.0 + 700.0 * cls) * t)
    return encode_wav(x, rate)


def timeseries_payload(params: Any, window_s: float, cls: int, rng: np.random.Generator) -> bytes:
    """.npy float32 (n, C): noise, with the class's channel oscillating."""
    n, c = max(1, round(params.sample_rate * window_s)), len(params.channels)
    t = np.arange(n) / params.sample_rate
    v = 0.05 * rng.standard_normal((n, c)).astype(np.float32)
    v[:, cls % c] += np.sin(2 * np.pi * 7 * t)
    return npy_bytes(v)


def text_payload(cls: int) -> str:
    return f"marker{cls} logged by operator"


def payload(spec: DatasetSpec, stream: str, window_s: float, cls: int, rng) -> Any:
    """One window's payload for `stream` (by its kind) showing class index `cls`."""
    kind, params = spec.streams[stream].kind, spec.params(stream)
    if kind in ("image", "video"):
        return image_payload(params, cls, len(spec.labels.classes), rng)
    if kind == "audio":
        return audio_payload(params, window_s, cls, rng)
    if kind == "timeseries":
        return timeseries_payload(params, window_s, cls, rng)
    if kind == "text":
        return text_payload(cls)
    raise ValueError(f"no test payload for kind {kind!r}")


def make_rows(
    spec: DatasetSpec,
    n_sessions: int = 6,
    windows: int = 12,
    seed: int = 0,
    strata: tuple[str, ...] = ("A", "B"),
    window_s: float = 1.0,
) -> pd.DataFrame:
    """An aligned-sample table (`columns.sample_columns(spec)`) whose classes show in every stream.

    Window w of session s has class (w + s) mod K. The second stream is missing where
    (w + 2s) mod 7 == 3, text streams carry text every third window only, and the last window
    of session 0 is an unlabelled boundary. The spec's stratify column takes strata[0] except in
    the last two sessions (strata[1]); the subject is subj(s mod 3); other metadata col(s mod 2).
    """
    rng = np.random.default_rng(seed)
    classes = spec.labels.classes
    names = spec.stream_names
    strat = spec.metadata.stratify
    rows = []
    for s in range(n_sessions):
        sid = f"s{s:02d}"
        for w in range(windows):
            cls = (w + s) % len(classes)
            boundary = s == 0 and w == windows - 1
            row: dict[str, Any] = {
                "session_id": sid,
                "window_index": w,
                "t_start": float(w * window_s),
                "t_end": float((w + 1) * window_s),
                "label": None if boundary else classes[cls],
                "label_overlap": 1.0,
                "boundary": boundary,
                "align_confidence": 9.0,
            }
            for i, name in enumerate(names):
                kind = spec.streams[name].kind
                present = not (i == 1 and (w + 2 * s) % 7 == 3)
                if kind == "text":
                    present = w % 3 == 0
                value = payload(spec, name, window_s, cls, rng) if present else None
                if kind == "text" and value is None:
                    value = ""
                row[columns.presence_column(name)] = present
                row[columns.payload_column(name)] = value
            for col in spec.meta_columns:
                if col == strat:
                    last = s >= n_sessions - 2 and len(strata) > 1
                    row[col] = strata[1] if last else strata[0]
                elif col == "subject":
                    row[col] = f"subj{s % 3}"
                else:
                    row[col] = f"{col}{s % 2}"
            rows.append(row)
    return pd.DataFrame(rows, columns=columns.sample_columns(spec))


def put_parts(
    store: ObjectStore, rows: pd.DataFrame, n_parts: int = 2, prefix: str = "runs/r1/aligned"
) -> list[str]:
    """Write `rows` as `n_parts` parquet parts; their keys."""
    keys = []
    for i, chunk in enumerate(np.array_split(np.arange(len(rows)), n_parts)):
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(rows.iloc[chunk], preserve_index=False), buf)
        key = f"{prefix}/part-{i:05d}.parquet"
        store.put_bytes(key, buf.getvalue())
        keys.append(key)
    return keys


def no_rejects() -> pd.DataFrame:
    return pd.DataFrame(
        {"session_id": pd.Series(dtype="string"), "window_index": pd.Series(dtype="Int64")}
    )


def write_test_shards(
    store: ObjectStore,
    spec: DatasetSpec,
    n_sessions: int = 6,
    windows: int = 12,
    samples_per_shard: int = 8,
    seed: int = 2,
    window_s: float = 1.0,
):
    """make_rows -> put_parts -> write_shards in one call; the manifest."""
    from modalops.shard import write_shards

    keys = put_parts(store, make_rows(spec, n_sessions, windows, window_s=window_s))
    cfg = ShardConfig(samples_per_shard=samples_per_shard, seed=seed)
    return write_shards(store, spec, keys, None, cfg, window_s=window_s)
