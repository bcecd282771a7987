"""Validation speed: rows/second of the sample-level suite on a ≥1M-row stats table, and decoding.

    .venv/bin/python benchmarks/validation_speed.py                 # 1M rows, 5k decoded samples
    .venv/bin/python benchmarks/validation_speed.py --rows 200000 --decode 1000   # quicker

The stats table is synthesised directly (decoding 1M payloads would measure PIL, not the
gate); decoding is measured separately on `--decode` real JPEG/WAV/npy payloads.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from modalops.config.validate import ValidateConfig
from modalops.testing.samples import make_catalog, make_samples
from modalops.validate import reject_samples, sample_stats, validate_dataset
from modalops.validate.stats import add_derived
from modalops.validate.suites import GXRunner, sample_rules
from modalops_demo.names import demo_spec


def synthetic_stats(spec, n: int, bad_fraction: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """A stats table shaped like sample_stats' output for the demo spec, with `bad_fraction`
    rows out of range."""
    rng = np.random.default_rng(seed)
    sessions = n // 600 + 1
    ones = pd.array(np.ones(n, bool), dtype="boolean")
    df = pd.DataFrame(
        {
            "session_id": pd.array(
                [f"s{i:05d}" for i in rng.integers(0, sessions, n)], dtype="string"
            ),
            "window_index": np.arange(n) % 600,
            "window_s": np.ones(n),
            "has__camera": rng.random(n) > 0.02,
            "has__audio": rng.random(n) > 0.02,
            "has__vibration": rng.random(n) > 0.02,
            "has__notes": rng.random(n) < 0.1,
            "camera__decodable": ones,
            "camera__width": np.full(n, 64.0),
            "camera__height": np.full(n, 64.0),
            "camera__brightness": rng.uniform(0.2, 0.7, n),
            "camera__blur": rng.lognormal(6, 0.5, n),
            "camera__phash": pd.array(rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)),
            "audio__decodable": ones,
            "audio__rate": np.full(n, 16000.0),
            "audio__duration_s": np.ones(n),
            "audio__rms": rng.lognormal(-2.5, 0.3, n),
            "audio__clip_fraction": np.zeros(n),
            "audio__nan": pd.array(np.zeros(n, bool), dtype="boolean"),
            "audio__duration_ratio": np.ones(n),
            "vibration__decodable": ones,
            "vibration__rows": np.full(n, 100.0),
            "vibration__nan_fraction": np.zeros(n),
            "vibration__min": rng.normal(-3, 0.3, n),
            "vibration__max": rng.normal(3, 0.3, n),
            "vibration__std": rng.lognormal(0, 0.2, n),
            "vibration__flat_channels": np.zeros(n),
            "vibration__rate": np.full(n, 100.0),
            "notes__len": rng.integers(0, 80, n).astype(float),
            "notes__valid_utf8": ones,
            "label": pd.array(
                rng.choice(list(spec.labels.classes), n, p=[0.55, 0.15, 0.15, 0.15]),
                dtype="string",
            ),
            "boundary": np.zeros(n, bool),
            "label_overlap": np.ones(n),
            "align_confidence": rng.uniform(5, 30, n),
        }
    )
    for col in spec.meta_columns:
        df[col] = pd.array(rng.choice(["a", "b", "c"], n), dtype="string")
    # Spread the defects over several expectations.
    bad = np.flatnonzero(rng.random(n) < bad_fraction)
    cols = ["camera__brightness", "audio__duration_ratio", "vibration__nan_fraction",
            "vibration__flat_channels", "align_confidence"]  # fmt: skip
    values = [0.0, 0.5, 0.5, 1.0, 0.1]
    for k, (col, value) in enumerate(zip(cols, values, strict=True)):
        df.loc[bad[k :: len(cols)], col] = value
    return add_derived(df, spec)


def synthetic_catalog(spec, stats: pd.DataFrame) -> pd.DataFrame:
    sessions = pd.DataFrame({"session_id": stats["session_id"].unique(), "t_end": 600.0})
    return make_catalog(sessions, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--decode", type=int, default=5000)
    args = parser.parse_args()
    cfg = ValidateConfig()
    spec = demo_spec()

    t = time.perf_counter()
    stats = synthetic_stats(spec, args.rows)
    print(f"synthesised {len(stats):,} stats rows in {time.perf_counter() - t:.1f} s")

    runner = GXRunner()  # GE import and context creation are paid once, outside the timings
    rules = sample_rules(spec, cfg)
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

    catalog = synthetic_catalog(spec, stats)
    t = time.perf_counter()
    result = validate_dataset(
        spec, catalog, pd.DataFrame(), cfg.model_copy(update={"label_check": False}), stats=stats
    )
    full_s = time.perf_counter() - t
    print(f"validate_dataset end to end (catalog {len(catalog):,} streams, stats given): "
          f"{full_s:.2f} s = {len(stats) / full_s:,.0f} rows/s; verdict "
          f"{'PASS' if result.passed else 'FAIL'}, bad fraction {100 * result.bad_fraction:.2f}%")  # fmt: skip

    samples = make_samples(spec, n_sessions=max(args.decode // 100, 1), windows=100)
    t = time.perf_counter()
    decoded = sample_stats(samples, spec)
    dec_s = time.perf_counter() - t
    print(f"sample_stats decoding {len(decoded):,} samples (JPEG+WAV+npy+text): {dec_s:.2f} s = "
          f"{len(decoded) / dec_s:,.0f} samples/s ({1e3 * dec_s / len(decoded):.2f} ms/sample)")  # fmt: skip


if __name__ == "__main__":
    main()
