"""Cost growth of the pipeline's stages: time and peak memory at 1x and 10x sessions.

    .venv/bin/python benchmarks/cost_growth.py                     # 16 and 160 sessions x 30 s
    .venv/bin/python benchmarks/cost_growth.py --dir /tmp/cg --stages train   # re-run one stage

Each stage (ingest, align, validate, shard, train, evaluate) runs in its own subprocess, so its
peak RSS is its own; the time is that of the stage's core call (imports excluded), the memory
figure the peak RSS above the process's RSS just before the call. Target: time <= 11x at 10x data,
memory flat. Train and evaluate are the fused model (`--epochs`, default 2) and its evaluation.

Every stage holds a bounded batch, never the dataset: align and validate one aligned part (8
sessions, the core's `batch_sessions`), shard one part and one tar being written, train one
decoded shard (`shard.samples_per_shard`) plus the shuffle buffer (`train.shuffle_buffer`),
evaluate one batch (`evaluate.batch_size`). What grows with the data is per-sample bookkeeping
(statistics, label features, predictions: bytes to a few hundred bytes a sample). For the ratio
to show growth with the data rather than a buffer filling up, the 1x run must already fill those
buffers: hence 16 sessions (two full parts of 8: a part-at-a-time stage reaches its steady peak
from the second part on, and with 12 sessions the second part holds only 4), shards and shuffle
buffer of 64 samples here (the defaults, 256 and 512, fill only past ~800 training samples), and
the label check on at both scales (by default it needs 1,000 windows). The label check is the one
step that holds per-sample features of the whole dataset (~1.2 KB a sample, float32) and fits a
model on them out of fold, so validate's memory grows with the data while the check is on
(`--no-label-check --stages validate` measures validate without it; its fits are capped at
`--label-check-max-fit` windows, which binds only past the demo's scales:
benchmarks/label_check_memory.py measures the fits alone).
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ["ingest", "align", "validate", "shard", "train", "evaluate"]


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def child(stage: str, raw_uri: str, work: str, sessions: int, knobs: dict) -> dict:
    """Run one stage on `sessions` sessions, reading the previous stage's outputs from `work`."""
    from modalops.align import align_dataset
    from modalops.config import PipelineConfig
    from modalops.dataset.load import load_dataset_spec
    from modalops.evaluate.evaluation import evaluate_models
    from modalops.ingest import ingest_recordings
    from modalops.runs import get_frame, put_frame
    from modalops.shard import DatasetManifest, write_shards
    from modalops.store import open_store
    from modalops.train import FUSED_ID
    from modalops.train.training import train_model
    from modalops.validate import evidence_from_parts, split_label_rejections, validate_dataset

    cfg = PipelineConfig()
    train_cfg = cfg.train.model_copy(
        update={
            "max_epochs": knobs["epochs"],
            "shuffle_buffer": knobs["shuffle_buffer"],
            "decode_cache_dir": str(Path(work) / "decoded"),
        }
    )
    shard_cfg = cfg.shard.model_copy(update={"samples_per_shard": knobs["samples_per_shard"]})
    validation = cfg.validation.model_copy(
        update={
            "fail_on_error": False,
            "min_samples_per_subgroup": 5,
            # the label check at both scales (its default minimum, 1,000 windows, skips it at 1x)
            "label_check": knobs["label_check"],
            "label_check_min_windows": 0,
            "label_check_max_fit_windows": knobs["label_check_max_fit"],
        }
    )
    raw, out = open_store(raw_uri), open_store(work)
    figures: dict = {}
    spec = load_dataset_spec(raw)
    if stage == "shard":
        # a version already written would be reused, not timed: a rerun with --dir writes afresh
        shutil.rmtree(Path(work) / "datasets", ignore_errors=True)
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
        res = validate_dataset(
            spec,
            get_frame(out, "catalog.parquet"),
            None,
            validation,
            align_report=get_frame(out, "align_report.parquet"),
            evidence=evidence_from_parts(out, parts, spec, validation),
        )
        out.put_bytes("rejected.pickle", pickle.dumps(res.rejected))
    elif stage == "shard":
        rejected = pickle.loads(out.get_bytes("rejected.pickle"))
        everywhere, train_only = split_label_rejections(rejected, validation)
        manifest = write_shards(
            out,
            spec,
            json.loads(out.get_text("parts.json")),
            everywhere,
            shard_cfg,
            extra={},
            train_only=train_only,
            window_s=cfg.align.window_s,
        )
        out.put_text("manifest.json", manifest.to_json())
    elif stage == "train":
        manifest = DatasetManifest.from_json(out.get_text("manifest.json"))
        res = train_model(
            out, manifest, train_cfg, FUSED_ID, spec.stream_names, Path(work) / "train",
            reuse=False,
        )  # fmt: skip
        out.put_bytes("trained.pickle", pickle.dumps(res))
        figures = {
            "samples": manifest.splits["train"].n_samples,
            "samples_per_s": res.metrics.get("samples_per_s"),
        }
    elif stage == "evaluate":
        manifest = DatasetManifest.from_json(out.get_text("manifest.json"))
        trained = pickle.loads(out.get_bytes("trained.pickle"))
        report = evaluate_models(out, manifest, [trained], cfg.evaluate, "evaluation")
        figures = {
            "samples": manifest.splits["val"].n_samples + manifest.splits["test"].n_samples,
            "test_macro_f1": report.headline.get("fused_macro_f1"),
        }
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"seconds": seconds, "peak_mb": peak, "stage_mb": max(peak - before, 0.0), **figures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=int, default=16, help="sessions at 1x (16: two parts)")
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per session")
    ap.add_argument("--samples-per-shard", type=int, default=64, help="shard.samples_per_shard")
    ap.add_argument("--shuffle-buffer", type=int, default=64, help="train.shuffle_buffer")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs of the fused model")
    ap.add_argument(
        "--no-label-check", action="store_true", help="validate without the label check"
    )
    ap.add_argument(
        "--label-check-max-fit",
        type=int,
        default=50_000,
        help="validation.label_check_max_fit_windows (a small cap shows the fit's share)",
    )
    ap.add_argument("--dir", help="keep the data and stage outputs here (reused when present)")
    ap.add_argument("--stages", help="comma-separated stages to run again (with --dir)")
    ap.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    ap.add_argument("--raw", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--sessions", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--knobs", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        knobs = json.loads(args.knobs)
        print(json.dumps(child(args.child, args.raw, args.work, args.sessions, knobs)))
        return

    from modalops.store import open_store
    from modalops_demo.generate import DemoDataConfig, generate_demo_data

    scales = [args.base, args.base * args.factor]
    figures: dict[int, dict[str, dict]] = {}
    stages = args.stages.split(",") if args.stages else STAGES
    knobs = json.dumps(
        {
            "epochs": args.epochs,
            "samples_per_shard": args.samples_per_shard,
            "shuffle_buffer": args.shuffle_buffer,
            "label_check": not args.no_label_check,
            "label_check_max_fit": args.label_check_max_fit,
        }
    )
    with tempfile.TemporaryDirectory(prefix="modalops-cost-") as tmp:
        root = Path(args.dir or tmp)
        raw = root / "raw"
        if not (raw / "dataset.yaml").exists():
            generate_demo_data(
                open_store(str(raw)), DemoDataConfig(sessions=scales[-1], duration_s=args.duration)
            )
        for n in scales:
            work = root / f"work-{n}"
            figures[n] = {}
            for stage in stages:
                cmd = [sys.executable, __file__, "--child", stage, "--raw", str(raw)]
                cmd += ["--work", str(work), "--sessions", str(n), "--knobs", knobs]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode:
                    raise SystemExit(f"{stage} at {n} sessions failed:\n{done.stderr[-3000:]}")
                figures[n][stage] = json.loads(done.stdout.strip().splitlines()[-1])
    lo, hi = scales
    print(
        f"cost growth, {lo} -> {hi} sessions x {args.duration:g} s ({args.factor}x data), {knobs}"
    )
    print(
        f"{'stage':<10}{'s @1x':>8}{'s @10x':>9}{'time x':>8}{'MB @1x':>9}{'MB @10x':>9}{'mem x':>7}"
    )
    for stage in stages:
        a, b = figures[lo][stage], figures[hi][stage]
        print(
            f"{stage:<10}{a['seconds']:8.2f}{b['seconds']:9.2f}{b['seconds'] / a['seconds']:8.1f}"
            f"{a['stage_mb']:9.0f}{b['stage_mb']:9.0f}"
            f"{b['stage_mb'] / a['stage_mb'] if a['stage_mb'] > 1 else float('nan'):7.1f}"
        )
    for stage in [s for s in ("train", "evaluate") if s in stages]:
        a, b = figures[lo][stage], figures[hi][stage]
        print(f"{stage}: {a['samples']} -> {b['samples']} samples", end="")
        if stage == "train":
            print(f", {a['samples_per_s']:.0f} -> {b['samples_per_s']:.0f} samples/s")
        else:
            print(f", test macro-F1 {a['test_macro_f1']:.3f} -> {b['test_macro_f1']:.3f}")
    print("(MB: the stage's peak RSS above the process's RSS before the call)")
    print(json.dumps({str(k): v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
