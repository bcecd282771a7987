"""The platform's own models on the suite's cases, beside classical baselines on the same split.

    .venv/bin/python -m benchmarks.real.platform                       # motions, spoken_digits, counting
    .venv/bin/python -m benchmarks.real.platform --cases motions --out .modalops/real

For each case: the case is built (benchmarks.real), its true clocks are given through a clock
file (alignment is measured by the suite itself; here the models are under test, as issue 22
measured them), and the training pipeline runs as a user runs it (`modalops run` with the
case's config diff below, against one local Prefect server, MLflow on SQLite). The figures come
from the run's own summary (its evaluation on the held-out sessions) and from the dataset
version it wrote; the classical baselines are then trained and scored on exactly the sessions of
that version's splits (train + val to fit, test to score), windows cut as the config cuts them.
Real-time factor: seconds of recording taken from raw files to a registered model per second of
the flow's wall clock.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.real.__main__ import CASES
from benchmarks.real.compose import CaseOutput, with_true_clocks

# Each case's config diff, as a user would write it for such data, with why.
CONFIGS: dict[str, dict] = {
    "motions": {
        "align": {"window_s": 2.0, "hop_s": 1.0},  # 10 Hz: a 1 s window holds 10 rows
        "validation": {"label_check_min_windows": 200},  # 16 sessions give ~700 windows
    },
    "spoken_digits": {
        "align": {"window_s": 0.4, "hop_s": 0.2},  # a spoken digit lasts 0.3-0.8 s
        "validation": {"min_class_fraction": 0.005},  # 11 classes, `none` is most windows
        # macro-F1 over 11 classes where `none` is most of the windows; val macro-F1 of the
        # audio model still rose at epoch 21-26 (early stopping ends it sooner when it stalls)
        "train": {"balancing": "class_weight", "max_epochs": 30},
    },
    "counting": {
        "align": {"window_s": 0.4, "hop_s": 0.2},
        "validation": {"min_class_fraction": 0.005},
        "train": {"balancing": "class_weight", "max_epochs": 30},
    },
}


def recording_seconds(case: CaseOutput) -> float:
    """Seconds of recording in the case: each session's longest label end (the session length)."""
    import pandas as pd

    total = 0.0
    for sid in case.sessions["session_id"].astype(str):
        labels = pd.read_csv(case.raw / "sessions" / sid / "labels.csv")
        total += float(labels["end_s"].max())
    return total


def run_pipeline(case: CaseOutput, work: Path, api_url: str) -> dict:
    """`modalops run` on the case with its true clocks, in a fresh folder (a store left by an
    earlier run would hand back its trained models from the cache: no training to time); the
    run's summary."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    raw = with_true_clocks(case.raw, case.truth, work)
    cfg = {
        "name": f"real-{case.name}",
        "ingest": {"raw_uri": raw},
        "store": {"uri": str(work / "store")},
        "registry": {
            "model_name": f"real-{case.name}",
            "tracking_uri": f"sqlite:///{work / 'mlflow.db'}",
        },
        **CONFIGS[case.name],
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cli = str(Path(sys.executable).with_name("modalops"))
    env = {**os.environ, "PREFECT_API_URL": api_url}
    done = subprocess.run(
        [cli, "run", "-c", str(path)], cwd=work, env=env, capture_output=True, text=True
    )
    (work / "run.log").write_text(done.stdout + "\n" + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"{case.name}: modalops run failed; see {work / 'run.log'}")
    # the summary is the JSON object the command prints; Prefect's log lines may follow it
    return json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("{\n") :])[0]


def platform_splits(store_uri: str, version: str) -> dict[str, str]:
    """session id -> 'train' / 'test' of the dataset version the run trained on (val trains)."""
    from modalops.shard import load_manifest
    from modalops.store import open_store

    manifest = load_manifest(open_store(store_uri), version)
    return {
        sid: "test" if name == "test" else "train"
        for name, split in manifest.splits.items()
        for sid in split.sessions
    }


def case_row(name: str, summary: dict, classical: dict, seconds: float) -> dict:
    metrics = summary["headline"]
    uni = summary["unimodal_macro_f1"]
    streams = [s for s in classical if s not in ("fused", "train_windows", "test_windows")]
    best_classical = max(classical[s] for s in streams)
    return {
        "case": name,
        "classical": ", ".join(f"{s} {classical[s]:.3f}" for s in streams)
        + f"; fused {classical['fused']:.3f} (lift {classical['fused'] - best_classical:+.3f})",
        "platform": ", ".join(f"{s} {uni[s]:.3f}" for s in uni),
        "fused": f"{metrics['fused_macro_f1']:.3f} [{metrics['fused_macro_f1_lo']:.3f}, "
        f"{metrics['fused_macro_f1_hi']:.3f}]",
        "lift": f"{metrics['lift']:+.3f} [{metrics['lift_lo']:+.3f}, {metrics['lift_hi']:+.3f}]",
        "train s": f"{summary['task_seconds'].get('train_classifier', float('nan')):.0f}",
        "flow s": f"{summary['flow_seconds']:.0f}",
        "real-time factor": f"{seconds / summary['flow_seconds']:.1f}x",
        "test windows": f"{metrics['n_test']} / {classical['test_windows']}",
    }


def main() -> None:
    from benchmarks.real.baselines import evaluate
    from modalops.services import start_prefect_server

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(".modalops/real"))
    ap.add_argument("--cache", type=Path, default=Path(".modalops/cache"))
    ap.add_argument("--cases", default=",".join(CONFIGS))
    args = ap.parse_args()
    server = start_prefect_server(args.out.resolve() / "_prefect")
    rows = []
    try:
        for name in args.cases.split(","):
            build, full, _, _ = CASES[name]
            t0 = time.perf_counter()
            case = build(args.out, args.cache, full)
            work = (args.out / "_platform" / name).resolve()
            summary = run_pipeline(case, work, server.url)
            cfg = CONFIGS[name]["align"]
            splits = platform_splits(str(work / "store"), summary["dataset_version"])
            classical = evaluate(case, cfg["window_s"], cfg["hop_s"], splits=splits)
            rows.append(case_row(name, summary, classical, recording_seconds(case)))
            print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        server.stop()
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(r[c] for c in cols) + " |")


if __name__ == "__main__":
    main()
