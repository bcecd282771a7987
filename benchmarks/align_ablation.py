"""Alignment ablation (issue 3 item 4): the demo pipeline under align.mode none vs estimate.

    .venv/bin/python benchmarks/align_ablation.py                      # demo config, none + estimate
    .venv/bin/python benchmarks/align_ablation.py --modes none metadata estimate \\
        --set train.max_epochs=3                                       # any --set is applied to all

Prints the fused model's macro-F1, the best unimodal model and the lift for each mode. Expected
shape (docs/alignment.md): a clearly positive lift with `estimate`, a much smaller one with `none`,
because misaligned audio/vibration windows describe a different moment than the frame.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run_pipeline(cfg):
    """One training_pipeline run, against the local Prefect server `make demo` uses."""
    from modalops.cli import run_flow

    return run_flow(cfg)


def main() -> None:
    from modalops.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", default=None, help="YAML config (repeatable)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="key.sub=value"
    )
    parser.add_argument("--modes", nargs="+", default=["none", "estimate"])
    args = parser.parse_args()
    paths = args.config or (
        [REPO / "configs/demo.yaml"] if (REPO / "configs/demo.yaml").exists() else []
    )

    # registered under their own name, so the ablation never competes with the demo's champion
    args.overrides = ["registry.model_name=modalops-ablation", *args.overrides]
    base = load_config(paths, args.overrides)
    raw_ready = False
    rows = []
    for mode in args.modes:
        cfg = load_config(paths, [*args.overrides, f"align.mode={mode}"])
        if not raw_ready:
            from modalops.store import open_store
            from modalops_demo.generate import DemoDataConfig, generate_demo_data
            from modalops_demo.names import SESSIONS_MANIFEST

            raw = open_store(cfg.ingest.raw_uri, endpoint_url=cfg.store.endpoint_url)
            if not raw.exists(SESSIONS_MANIFEST):
                generate_demo_data(raw, DemoDataConfig())
            raw_ready = True
        t0 = time.monotonic()
        summary = run_pipeline(cfg)
        rows.append((mode, summary, time.monotonic() - t0))
        print(
            f"[{mode}] done in {time.monotonic() - t0:.0f} s: dataset {summary['dataset_version']}"
        )

    print(f"\nalignment ablation ({base.name}; {', '.join(map(str, paths)) or 'defaults'})")
    print(f"{'align.mode':<11} {'fused F1':>9} {'best unimodal':>22} {'lift':>8}   unimodal F1")
    for mode, s, _ in rows:
        uni = s["unimodal_macro_f1"]
        best = f"{s['best_unimodal']} {uni[s['best_unimodal']]:.3f}"
        others = ", ".join(f"{k} {v:.3f}" for k, v in sorted(uni.items()))
        print(f"{mode:<11} {s['fused_macro_f1']:>9.3f} {best:>22} {s['lift']:>+8.3f}   {others}")


if __name__ == "__main__":
    main()
