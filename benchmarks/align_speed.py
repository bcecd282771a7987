"""Align-stage speed and memory: join vs merge_asof, throughput, peak RSS for 10 vs 100 sessions.

    .venv/bin/python benchmarks/align_speed.py                 # all three, ~2-4 min on 2 cores
    .venv/bin/python benchmarks/align_speed.py --rows 5000000  # a bigger join

Targets (issue 3): join at least as fast as pandas.merge_asof on >= 1M rows; >= 300x real time
on one core; peak RSS for 100 sessions within 1.5x that for 10.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modalops.align import align_dataset  # noqa: E402
from modalops.config.align import AlignConfig  # noqa: E402
from modalops.config.data import IngestConfig  # noqa: E402
from modalops.dataset.spec import SPEC_FILE, load_spec_file  # noqa: E402
from modalops.ingest import ingest_recordings  # noqa: E402
from modalops.kinds.timing import nearest_index  # noqa: E402
from modalops.store import LocalStore  # noqa: E402
from modalops_demo.generate import DemoDataConfig, generate_demo_data  # noqa: E402


def bench_join(rows: int, repeats: int = 3) -> dict[str, float]:
    """Nearest frame per window centre: our searchsorted join vs pandas.merge_asof, same arrays."""
    rng = np.random.default_rng(0)
    frames = np.cumsum(rng.uniform(0.2, 0.3, rows))  # ~4 fps with jitter
    centres = np.sort(rng.uniform(frames[0], frames[-1], rows))
    tol = 1.5 * 0.25
    ours, theirs = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        idx = nearest_index(frames, centres, tol)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        left = pd.DataFrame({"c": centres})
        right = pd.DataFrame({"t": frames, "i": np.arange(rows)})
        ref = pd.merge_asof(
            left, right, left_on="c", right_on="t", direction="nearest", tolerance=tol
        )
        theirs.append(time.perf_counter() - t0)
    same = np.mean((ref["i"].fillna(-1).to_numpy() >= 0) == (idx >= 0))
    return {"rows": rows, "ours_s": min(ours), "merge_asof_s": min(theirs),
            "speedup": min(theirs) / min(ours), "agreement": float(same)}  # fmt: skip


def make_raw(root: Path, sessions: int, duration: float) -> Path:
    raw = LocalStore(root / "raw")
    generate_demo_data(raw, DemoDataConfig(sessions=sessions, duration_s=duration, seed=11))
    spec = load_spec_file(root / "raw" / SPEC_FILE)  # the generator writes the demo's spec
    ingested = ingest_recordings(raw, spec, IngestConfig(raw_uri=raw.root))
    ingested.catalog.to_parquet(root / "catalog.parquet")
    ingested.quarantine.to_parquet(root / "quarantine.parquet")
    return root


def run_align(root: Path, n_sessions: int) -> dict[str, float]:
    """Align the first n sessions; CPU seconds and peak RSS of this process."""
    catalog = pd.read_parquet(root / "catalog.parquet")
    keep = sorted(catalog["session_id"].unique())[:n_sessions]
    catalog = catalog[catalog["session_id"].isin(keep)]
    quarantine = pd.read_parquet(root / "quarantine.parquet")
    raw = LocalStore(root / "raw")
    spec = load_spec_file(root / "raw" / SPEC_FILE)
    with tempfile.TemporaryDirectory() as out_dir:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = align_dataset(
            raw, spec, catalog, AlignConfig(), LocalStore(out_dir), "bench", quarantine
        )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    ref = result.report[result.report["stream"] == spec.reference]
    recorded_s = float((ref["windows_total"] * AlignConfig().hop_s).sum())
    return {"sessions": n_sessions, "samples": result.n_samples, "recorded_h": recorded_s / 3600,
            "cpu_s": cpu, "wall_s": wall,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


def child(root: str, n: int) -> None:
    print(json.dumps(run_align(Path(root), n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=60.0, help="session length (s)")
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=100)
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return

    j = bench_join(args.rows)
    print(f"(a) window join, {j['rows']:,} window centres x {j['rows']:,} frames")
    print(f"    searchsorted join {j['ours_s'] * 1e3:8.1f} ms | merge_asof {j['merge_asof_s'] * 1e3:8.1f} ms"
          f" | speedup x{j['speedup']:.1f} (target >= 1) | presence agreement {j['agreement']:.4f}")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        make_raw(root, args.large, args.duration)
        print(f"    (generated + ingested {args.large} x {args.duration:.0f} s demo sessions in "
              f"{time.perf_counter() - t0:.0f} s)")  # fmt: skip
        runs = {}
        for n in (args.small, args.large):
            out = subprocess.run([sys.executable, __file__, "--child", str(root), str(n)],
                                 check=True, capture_output=True, text=True)  # fmt: skip
            runs[n] = json.loads(out.stdout.strip().splitlines()[-1])
    big = runs[args.large]
    speed = big["recorded_h"] / (big["cpu_s"] / 60)
    print(
        f"(b) throughput: {big['recorded_h']:.2f} h of 4-stream recording aligned in "
        f"{big['cpu_s']:.1f} CPU s ({big['wall_s']:.1f} s wall)"
    )
    print(
        f"    = {speed:.1f} h per CPU minute = {speed * 60:.0f}x real time on one core (target >= 300x)"
    )
    small = runs[args.small]
    print(
        f"(c) peak RSS: {args.small} sessions {small['peak_rss_mb']:.0f} MB | "
        f"{args.large} sessions {big['peak_rss_mb']:.0f} MB | ratio "
        f"{big['peak_rss_mb'] / small['peak_rss_mb']:.2f} (target <= 1.5)"
    )


if __name__ == "__main__":
    main()
