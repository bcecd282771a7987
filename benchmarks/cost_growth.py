"""Cost growth of the data stages: time and peak memory at 1x and 10x sessions.

    .venv/bin/python benchmarks/cost_growth.py                       # 4 and 40 sessions x 30 s
    .venv/bin/python benchmarks/cost_growth.py --base 2 --duration 20   # quicker

Each stage (ingest, align, validate, shard) runs in its own subprocess, so its peak RSS is its
own; the time is that of the stage's core call (imports excluded), the memory figure the peak
RSS above the process's RSS just before the call. Target: time ≤ 11x at 10x data, memory flat
(stages that stream a bounded batch at a time); a stage that holds the whole dataset shows it.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ["ingest", "align", "validate", "shard"]


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def child(stage: str, raw_uri: str, work: str, sessions: int) -> dict:
    """Run one stage on `sessions` sessions, reading the previous stage's outputs from `work`."""
    import pandas as pd

    from modalops.align import align_dataset
    from modalops.config import PipelineConfig
    from modalops.dataset.load import load_dataset_spec
    from modalops.ingest import ingest_recordings
    from modalops.runs import get_frame, put_frame
    from modalops.shard import write_shards
    from modalops.store import open_store
    from modalops.validate import split_label_rejections, validate_dataset

    cfg = PipelineConfig()
    validation = cfg.validation.model_copy(
        update={"fail_on_error": False, "min_samples_per_subgroup": 5}
    )
    raw, out = open_store(raw_uri), open_store(work)
    spec = load_dataset_spec(raw)
    before = _rss_mb()
    t = time.perf_counter()
    if stage == "ingest":
        res = ingest_recordings(raw, spec, cfg.ingest.model_copy(update={"max_sessions": sessions}))
        put_frame(out, "catalog.parquet", res.catalog)
        put_frame(out, "quarantine.parquet", res.quarantine)
    elif stage == "align":
        res = align_dataset(
            raw,
            spec,
            get_frame(out, "catalog.parquet"),
            cfg.align,
            out=out,
            prefix="run",
            quarantine=get_frame(out, "quarantine.parquet"),
        )
        out.put_text("parts.json", json.dumps(res.part_keys))
        put_frame(out, "align_report.parquet", res.report)
    elif stage == "validate":
        parts = json.loads(out.get_text("parts.json"))
        samples = pd.concat([get_frame(out, k) for k in parts], ignore_index=True)
        res = validate_dataset(
            spec,
            get_frame(out, "catalog.parquet"),
            samples,
            validation,
            align_report=get_frame(out, "align_report.parquet"),
        )
        out.put_bytes("rejected.pickle", pickle.dumps(res.rejected))
    elif stage == "shard":
        rejected = pickle.loads(out.get_bytes("rejected.pickle"))
        everywhere, train_only = split_label_rejections(rejected, validation)
        write_shards(
            out,
            spec,
            json.loads(out.get_text("parts.json")),
            everywhere,
            cfg.shard,
            extra={},
            train_only=train_only,
            window_s=cfg.align.window_s,
        )
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"seconds": seconds, "peak_mb": peak, "stage_mb": max(peak - before, 0.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=int, default=4, help="sessions at 1x")
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per session")
    ap.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    ap.add_argument("--raw", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--sessions", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.raw, args.work, args.sessions)))
        return

    from modalops.store import open_store
    from modalops_demo.generate import DemoDataConfig, generate_demo_data

    scales = [args.base, args.base * args.factor]
    figures: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="modalops-cost-") as tmp:
        raw = Path(tmp) / "raw"
        generate_demo_data(
            open_store(str(raw)), DemoDataConfig(sessions=scales[-1], duration_s=args.duration)
        )
        for n in scales:
            work = Path(tmp) / f"work-{n}"
            figures[n] = {}
            for stage in STAGES:
                cmd = [sys.executable, __file__, "--child", stage, "--raw", str(raw)]
                cmd += ["--work", str(work), "--sessions", str(n)]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode:
                    raise SystemExit(f"{stage} at {n} sessions failed:\n{done.stderr[-3000:]}")
                figures[n][stage] = json.loads(done.stdout.strip().splitlines()[-1])
    lo, hi = scales
    print(f"cost growth, {lo} -> {hi} sessions x {args.duration:g} s ({args.factor}x data)")
    print(
        f"{'stage':<10}{'s @1x':>8}{'s @10x':>9}{'time x':>8}{'MB @1x':>9}{'MB @10x':>9}{'mem x':>7}"
    )
    for stage in STAGES:
        a, b = figures[lo][stage], figures[hi][stage]
        print(
            f"{stage:<10}{a['seconds']:8.2f}{b['seconds']:9.2f}{b['seconds'] / a['seconds']:8.1f}"
            f"{a['stage_mb']:9.0f}{b['stage_mb']:9.0f}"
            f"{b['stage_mb'] / a['stage_mb'] if a['stage_mb'] > 1 else float('nan'):7.1f}"
        )
    print("(MB: the stage's peak RSS above the process's RSS before the call)")
    print(json.dumps({str(k): v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
