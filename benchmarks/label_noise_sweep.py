"""Label-noise sweep: 0/5/10/25% subtly wrong labels → what the gate filters, and (TODO) the
fused macro-F1 on a clean test split with and without the gate's filtering (issue 4, exp. 2).

    .venv/bin/python benchmarks/label_noise_sweep.py --sessions 40 --rates 0 0.05 0.1 0.25

Implemented: for each rate, demo data with `label_shift` and `label_swap` at rate/2 each,
the real ingest → align → validate stages, and the share of sample windows whose label is
wrong (against the clean generation with the same seed) that the gate rejects.

TODO(lead): the F1 half needs the shard → train → evaluate stage calls with a test split
taken from the *clean* generation (same seed, corrupt={}): write_shards(..., rejected=None)
for "without gate" and rejected=result.rejected for "with gate", train the fused model with
the ci config, and evaluate on the clean test sessions. Hook it in at `train_and_score`.
"""

from __future__ import annotations

import argparse
import tempfile

import pandas as pd
from validation_detection import run_pipeline  # noqa: E402  (benchmarks/ is the script dir)

from modalops.config.validate import ValidateConfig
from modalops.demo_data import DemoDataConfig


def train_and_score(samples_rejected: pd.DataFrame | None) -> float | None:
    """Fused macro-F1 on the clean test split (TODO, see the module docstring)."""
    del samples_rejected
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--rates", type=float, nargs="*", default=[0.0, 0.05, 0.1, 0.25])
    args = parser.parse_args()
    vcfg = ValidateConfig()
    with tempfile.TemporaryDirectory(prefix="modalops-noise-") as tmp:
        _, clean, _, _, _ = run_pipeline(
            f"{tmp}/clean", DemoDataConfig(sessions=args.sessions), vcfg
        )
        truth = clean.stats.set_index(["session_id", "window_index"])["label"]
        print(
            "| label noise | wrong windows | rejected | wrong among rejected | gate | F1 no gate | F1 gate |"
        )
        print("|---|---|---|---|---|---|---|")
        for rate in args.rates:
            corrupt = {"label_shift": rate / 2, "label_swap": rate / 2} if rate else {}
            demo = DemoDataConfig(sessions=args.sessions, corrupt=corrupt)
            _, result, _, n, _ = run_pipeline(f"{tmp}/r{rate}", demo, vcfg)
            labels = result.stats.set_index(["session_id", "window_index"])["label"]
            both = labels.to_frame("noisy").join(truth.rename("clean"), how="inner").dropna()
            wrong = both["noisy"] != both["clean"]
            rej = set(
                zip(result.rejected["session_id"], result.rejected["window_index"], strict=True)
            )
            caught = sum(1 for k in both.index[wrong] if k in rej)
            f1_raw, f1_gate = train_and_score(None), train_and_score(result.rejected)
            print(f"| {rate:.0%} | {int(wrong.sum())} of {len(both)} | {len(rej)} | {caught} | "
                  f"{'PASS' if result.passed else 'FAIL'} | {f1_raw or 'TODO'} | {f1_gate or 'TODO'} |")  # fmt: skip


if __name__ == "__main__":
    main()
