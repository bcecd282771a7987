"""Detection: for each corruption kind, the share of injected defects the gate catches, and
the false-reject rate on clean data (issue 4, experiment 1).

    .venv/bin/python benchmarks/validation_detection.py                     # 40 sessions, 5%
    .venv/bin/python benchmarks/validation_detection.py --sessions 12 --rate 0.1 --kinds jpeg
    .venv/bin/python benchmarks/validation_detection.py --no-label-check --kinds label_swap

Each run generates demo data with one corruption kind (same seed and signals as the clean
run), then runs the real ingest → align → validate stages with the default validation config.
`modalops_demo.detection` judges each injected defect (one `truth/corruptions.json` record): caught
only by evidence of its own kind (its file quarantined with the expected reason, a window of
its session rejected by the expected check, or a window whose label it changed rejected as
`label_inconsistent`), `masked` when another defect kept its data from the gate, `no_effect`
for a label change no aligned window saw. `caught_%` = caught / (caught + missed). Label kinds
also score the flagged windows against the clean run's labels: `wrong_windows` (label
differs), `flagged`, `flag_precision`, `flag_recall`.
"""

from __future__ import annotations

import argparse
import tempfile

import pandas as pd

from modalops.config.validate import ValidateConfig
from modalops.store import open_store
from modalops_demo.corruption import CORRUPTION_KINDS
from modalops_demo.detection import (
    detection_table,
    flag_scores,
    run_gate_stages,
    score_detections,
    wrong_label_windows,
)
from modalops_demo.generate import DemoDataConfig, generate_demo_data


def run_pipeline(root: str, demo: DemoDataConfig, vcfg: ValidateConfig):
    summary = generate_demo_data(open_store(f"{root}/raw"), demo)
    return summary, run_gate_stages(f"{root}/raw", f"{root}/store", vcfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--kinds", nargs="*", default=list(CORRUPTION_KINDS))
    parser.add_argument(
        "--no-label-check",
        action="store_true",
        help="validation.label_check: false (what the per-file checks alone catch)",
    )
    args = parser.parse_args()
    vcfg = ValidateConfig(label_check=not args.no_label_check)

    rows = []
    with tempfile.TemporaryDirectory(prefix="modalops-detect-") as tmp:
        clean = DemoDataConfig(sessions=args.sessions, duration_s=args.duration)
        _, clean_run = run_pipeline(f"{tmp}/clean", clean, vcfg)
        clean_result, manifest, n = clean_run.result, clean_run.manifest, len(clean_run.samples)
        pipe_s, val_s = clean_run.seconds
        n_val = len(clean_result.rejected)
        print(f"clean: {n} samples, {n_val} rejected by validation ({100 * n_val / max(n, 1):.2f}%), "
              f"{len(manifest)} quarantine rows in all; gate {'PASS' if clean_result.passed else 'FAIL'}; "
              f"ingest+align {pipe_s:.1f} s, validate {val_s:.1f} s "
              f"({100 * val_s / (pipe_s + val_s):.0f}% of the three stages)")  # fmt: skip
        if n_val:
            print(clean_result.rejected["reason"].str.split(":").str[0].value_counts().to_string())
        for kind in args.kinds:
            demo = DemoDataConfig(
                sessions=args.sessions, duration_s=args.duration, corrupt={kind: args.rate}
            )
            summary, gate = run_pipeline(f"{tmp}/{kind}", demo, vcfg)
            result, manifest = gate.result, gate.manifest
            wrong = wrong_label_windows(result.stats, clean_result.stats)
            detections = score_detections(summary.corrupted, manifest, result.stats, wrong)
            row = detection_table(detections).iloc[0].to_dict()
            row.update(
                rejected_samples=len(result.rejected),
                bad_fraction_pct=round(100 * result.bad_fraction, 2),
                gate="PASS" if result.passed else "FAIL",
            )
            if kind in ("label_shift", "label_swap"):
                scores = flag_scores(result, wrong)
                scores.pop("hits")
                row.update(
                    {k: round(v, 2) if isinstance(v, float) else v for k, v in scores.items()}
                )
            for d in detections:
                if d.outcome in ("missed", "masked"):
                    print(f"  {d.outcome}: {d.kind} {d.session_id} {d.file}: {d.evidence}")
            rows.append(row)
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1))
    if rows:
        table = pd.DataFrame(rows)
        print("\n| " + " | ".join(table.columns) + " |")
        print("|" + "---|" * len(table.columns))
        for rec in table.itertuples(index=False):
            print(
                "| "
                + " | ".join(
                    ("" if v != v else f"{v:g}") if isinstance(v, float) else str(v)  # NaN: blank
                    for v in rec
                )
                + " |"
            )


if __name__ == "__main__":
    main()
