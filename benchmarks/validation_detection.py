"""Detection: for each corruption kind, the share of injected defects the gate catches, and
the false-reject rate on clean data (issue 4, experiment 1).

    .venv/bin/python benchmarks/validation_detection.py                     # 40 sessions, 5%
    .venv/bin/python benchmarks/validation_detection.py --sessions 12 --rate 0.1 --kinds jpeg
    .venv/bin/python benchmarks/validation_detection.py --label-check --kinds label_shift label_swap

Each run generates demo data with one corruption kind, then runs the real ingest → align →
validate stages. An injected defect (one `truth/corruptions.json` record) counts as caught
when a quarantine row of any stage names its file, or names its session with the modality
the defect damages (a rejected window or quarantined stream); `label_shift` / `label_swap`
are caught only if a validate row rejects a window of that session for its label. With
`--label-check` (validation.label_check: true) their rows also score the flagged windows against
the clean run's aligned labels: `wrong_windows` (label differs), `flag_precision`, `flag_recall`.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pandas as pd

from modalops import quarantine
from modalops.align import align_dataset
from modalops.config.align import AlignConfig
from modalops.config.data import IngestConfig
from modalops.config.validate import ValidateConfig
from modalops.corruption import CORRUPTION_KINDS
from modalops.demo_data import DemoDataConfig, generate_demo_data
from modalops.ingest import ingest_recordings
from modalops.store import open_store
from modalops.validation import validate_dataset

# The modality whose rows in the quarantine manifest point at each kind of defect.
KIND_MODALITY = {
    "jpeg": "camera",
    "truncated_wav": "audio",
    "sample_rate": "audio",
    "nan_burst": "vibration",
    "flatline": "vibration",
    "shuffled_timestamps": None,  # any stream of the session
    "missing_modality": None,
    "unknown_label": "labels",
    "label_shift": "labels",
    "label_swap": "labels",
}


def run_pipeline(root: str, demo: DemoDataConfig, vcfg: ValidateConfig):
    raw = open_store(f"{root}/raw")
    summary = generate_demo_data(raw, demo)
    t0 = time.perf_counter()
    ingested = ingest_recordings(raw, IngestConfig(raw_uri=f"{root}/raw"))
    out = open_store(f"{root}/store")
    aligned = align_dataset(raw, ingested.catalog, AlignConfig(), out, "run", ingested.quarantine)
    samples = pd.concat([pd.read_parquet(f"{root}/store/{k}") for k in aligned.part_keys])
    t1 = time.perf_counter()
    result = validate_dataset(ingested.catalog, samples, vcfg, align_report=aligned.report)
    t2 = time.perf_counter()
    manifest = quarantine.concat(ingested.quarantine, aligned.quarantine, result.quarantine)
    return summary, result, manifest, len(samples), (t1 - t0, t2 - t1)


def caught(record, manifest: pd.DataFrame, result) -> bool:
    rows = manifest[manifest["session_id"].astype(str) == record.session_id]
    if rows.empty:
        return False
    if record.file and rows["uri"].astype(str).str.endswith(record.file).any():
        return True
    modality = KIND_MODALITY.get(record.kind)
    if record.kind in ("label_shift", "label_swap", "unknown_label"):
        v = rows[rows["stage"] == "validate"]
        ing = rows[(rows["stage"] != "validate") & (rows["modality"].astype(str) == "labels")]
        return bool(v["reason"].astype(str).str.contains("label").any() or len(ing))
    if modality is None:
        return True
    return bool((rows["modality"].astype(str) == modality).any() or rows["modality"].isna().any())


def window_flags(result, truth: pd.Series) -> dict:
    """Flagged windows ('label_inconsistent') against the windows whose label is really wrong."""
    key = ["session_id", "window_index"]
    labels = result.stats.set_index(key)["label"].to_frame("noisy").join(truth.rename("clean"))
    wrong = (labels["noisy"] != labels["clean"]) & labels["noisy"].notna() & labels["clean"].notna()
    flags = result.rejected[
        result.rejected["reason"].astype(str).str.startswith("label_inconsistent")
    ]
    hits = int((labels.index.isin(pd.MultiIndex.from_frame(flags[key])) & wrong.to_numpy()).sum())
    return {
        "wrong_windows": int(wrong.sum()),
        "flag_precision": round(hits / len(flags), 2) if len(flags) else float("nan"),
        "flag_recall": round(hits / int(wrong.sum()), 2) if wrong.any() else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--kinds", nargs="*", default=list(CORRUPTION_KINDS))
    parser.add_argument(
        "--label-check", action="store_true", help="validation.label_check: true (issue 4)"
    )
    args = parser.parse_args()
    vcfg = ValidateConfig(label_check=args.label_check)

    rows = []
    with tempfile.TemporaryDirectory(prefix="modalops-detect-") as tmp:
        clean = DemoDataConfig(sessions=args.sessions, duration_s=args.duration)
        _, result, manifest, n, (pipe_s, val_s) = run_pipeline(f"{tmp}/clean", clean, vcfg)
        n_val = len(result.rejected)
        print(f"clean: {n} samples, {n_val} rejected by validation ({100 * n_val / max(n, 1):.2f}%), "
              f"{len(manifest)} quarantine rows in all; gate {'PASS' if result.passed else 'FAIL'}; "
              f"ingest+align {pipe_s:.1f} s, validate {val_s:.1f} s "
              f"({100 * val_s / (pipe_s + val_s):.0f}% of the three stages)")  # fmt: skip
        if n_val:
            print(result.rejected["reason"].str.split(":").str[0].value_counts().to_string())
        truth = result.stats.set_index(["session_id", "window_index"])["label"]
        for kind in args.kinds:
            demo = DemoDataConfig(
                sessions=args.sessions, duration_s=args.duration, corrupt={kind: args.rate}
            )
            summary, result, manifest, n, _ = run_pipeline(f"{tmp}/{kind}", demo, vcfg)
            injected = [r for r in summary.corrupted if r.kind == kind]
            hits = sum(caught(r, manifest, result) for r in injected)
            rows.append(
                {
                    "kind": kind,
                    "injected": len(injected),
                    "caught": hits,
                    "caught_%": 100 * hits / len(injected) if injected else float("nan"),
                    "rejected_samples": len(result.rejected),
                    "bad_fraction_%": round(100 * result.bad_fraction, 2),
                    "gate": "PASS" if result.passed else "FAIL",
                }
            )
            if args.label_check and kind in ("label_shift", "label_swap"):
                rows[-1].update(window_flags(result, truth))
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
