"""Validation speed: rows/second of the sample-level suite on a ≥1M-row stats table, and decoding.

    .venv/bin/python benchmarks/validation_speed.py                 # 1M rows, 5k decoded samples
    .venv/bin/python benchmarks/validation_speed.py --rows 200000 --decode 1000   # quicker

The stats table is synthesised directly (decoding 1M payloads would measure PIL, not the
gate); decoding is measured separately on `--decode` real JPEG/WAV/npy payloads.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import pandas as pd
from PIL import Image

from modalops import schema
from modalops.config.validate import ValidateConfig
from modalops.raw_layout import encode_wav
from modalops.validation import sample_stats, validate_dataset
from modalops.validation.gate import reject_samples
from modalops.validation.stats import add_derived
from modalops.validation.suites import GXRunner, sample_rules


def synthetic_stats(n: int, bad_fraction: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """A stats table shaped like sample_stats' output, with `bad_fraction` rows out of range."""
    rng = np.random.default_rng(seed)
    sessions = n // 600 + 1
    df = pd.DataFrame(
        {
            "session_id": pd.array(
                [f"s{i:05d}" for i in rng.integers(0, sessions, n)], dtype="string"
            ),
            "window_index": np.arange(n) % 600,
            "window_s": np.ones(n),
            "has_camera": rng.random(n) > 0.02,
            "has_audio": rng.random(n) > 0.02,
            "has_vibration": rng.random(n) > 0.02,
            "has_notes": rng.random(n) < 0.1,
            "image_decodable": pd.array(np.ones(n, bool), dtype="boolean"),
            "image_width": np.full(n, 64.0),
            "image_height": np.full(n, 64.0),
            "brightness": rng.uniform(0.2, 0.7, n),
            "blur": rng.lognormal(6, 0.5, n),
            "phash": pd.array(rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)),
            "audio_decodable": pd.array(np.ones(n, bool), dtype="boolean"),
            "audio_rate": np.full(n, 16000.0),
            "audio_duration_s": np.ones(n),
            "audio_rms": rng.lognormal(-2.5, 0.3, n),
            "audio_clip_fraction": np.zeros(n),
            "audio_nan": pd.array(np.zeros(n, bool), dtype="boolean"),
            "audio_duration_ratio": np.ones(n),
            "vib_decodable": pd.array(np.ones(n, bool), dtype="boolean"),
            "vib_rows": np.full(n, 100.0),
            "vib_nan_fraction": np.zeros(n),
            "vib_min": rng.normal(-3, 0.3, n),
            "vib_max": rng.normal(3, 0.3, n),
            "vib_std": rng.lognormal(0, 0.2, n),
            "vib_flat_channels": np.zeros(n),
            "vib_rate": np.full(n, 100.0),
            "text_len": rng.integers(0, 80, n).astype(float),
            "text_valid_utf8": pd.array(np.ones(n, bool), dtype="boolean"),
            "label": pd.array(
                rng.choice(list(schema.LABELS), n, p=[0.55, 0.15, 0.15, 0.15]), dtype="string"
            ),
            "boundary": np.zeros(n, bool),
            "label_overlap": np.ones(n),
            "align_confidence": rng.uniform(5, 30, n),
        }
    )
    for col in schema.META_COLUMNS:
        df[col] = pd.array(rng.choice(["a", "b", "c"], n), dtype="string")
    # Spread the defects over several expectations.
    bad = np.flatnonzero(rng.random(n) < bad_fraction)
    cols = ["brightness", "audio_rate", "vib_nan_fraction", "vib_flat_channels", "align_confidence"]
    values = [0.0, 8000.0, 0.5, 1.0, 0.1]
    for k, (col, value) in enumerate(zip(cols, values, strict=True)):
        df.loc[bad[k :: len(cols)], col] = value
    return add_derived(df)


def synthetic_catalog(stats: pd.DataFrame) -> pd.DataFrame:
    sessions = stats["session_id"].unique()
    rows = []
    for sid in sessions:
        for modality in (*schema.MODALITIES, "labels", "clock"):
            rate = {"audio": 16000.0, "vibration": 100.0}.get(modality, np.nan)
            rows.append(
                dict(session_id=sid, modality=modality, key="k", uri="u", content_hash="h",
                     n_bytes=1, duration_s=600.0, sample_rate=rate, n_items=1, t_first=0.0,
                     t_last=600.0, nan_fraction=0.0, status="ok", reason=None)
            )  # fmt: skip
    return pd.DataFrame(rows)


def payload_samples(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        coarse = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(coarse).resize((64, 64), Image.BILINEAR)
        jpg = io.BytesIO()
        img.save(jpg, format="JPEG", quality=90)
        wav = encode_wav(rng.normal(0, 0.1, 16000), 16000)
        npy = io.BytesIO()
        np.save(npy, rng.normal(0, 1, (100, 3)).astype(np.float32))
        rows.append(
            dict(session_id=f"s{i // 100:03d}", window_index=i % 100, t_start=float(i % 100),
                 t_end=float(i % 100 + 1), label="normal", boundary=False, has_camera=True,
                 has_audio=True, has_vibration=True, has_notes=i % 10 == 0,
                 camera_jpeg=jpg.getvalue(), audio_wav=wav,
                 vibration_npy=npy.getvalue(), notes_text="guard ok" if i % 10 == 0 else "",
                 align_confidence=10.0)
        )  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--decode", type=int, default=5000)
    args = parser.parse_args()
    cfg = ValidateConfig()

    t = time.perf_counter()
    stats = synthetic_stats(args.rows)
    print(f"synthesised {len(stats):,} stats rows in {time.perf_counter() - t:.1f} s")

    runner = GXRunner()  # GE import and context creation are paid once, outside the timings
    rules = sample_rules(cfg)
    warm = stats.head(1000)
    runner.run("warmup", warm, [r.to_gx() for r in rules])
    t = time.perf_counter()
    runner.run("samples", stats, [r.to_gx() for r in rules])
    ge_s = time.perf_counter() - t
    runner.close()
    print(f"GE sample suite ({len(rules)} expectations): {ge_s:.2f} s = "
          f"{len(stats) / ge_s:,.0f} rows/s")  # fmt: skip

    t = time.perf_counter()
    rejected = reject_samples(stats, rules)
    rej_s = time.perf_counter() - t
    print(f"row masks + rejection reasons ({len(rejected):,} rejected): {rej_s:.2f} s = "
          f"{len(stats) / rej_s:,.0f} rows/s")  # fmt: skip

    catalog = synthetic_catalog(stats)
    t = time.perf_counter()
    result = validate_dataset(catalog, pd.DataFrame(), cfg, stats=stats)
    full_s = time.perf_counter() - t
    print(f"validate_dataset end to end (catalog {len(catalog):,} streams, stats given): "
          f"{full_s:.2f} s = {len(stats) / full_s:,.0f} rows/s; verdict "
          f"{'PASS' if result.passed else 'FAIL'}, bad fraction {100 * result.bad_fraction:.2f}%")  # fmt: skip

    samples = payload_samples(args.decode)
    t = time.perf_counter()
    decoded = sample_stats(samples)
    dec_s = time.perf_counter() - t
    print(f"sample_stats decoding {len(decoded):,} samples (JPEG+WAV+npy+text): {dec_s:.2f} s = "
          f"{len(decoded) / dec_s:,.0f} samples/s ({1e3 * dec_s / len(decoded):.2f} ms/sample)")  # fmt: skip


if __name__ == "__main__":
    main()
