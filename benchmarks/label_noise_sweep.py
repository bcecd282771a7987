"""Label-noise sweep: 0/5/10/25% subtly wrong labels → fused macro-F1 on a clean test split, with
and without the gate's label-consistency filtering (issue 4, experiment 2).

    .venv/bin/python benchmarks/label_noise_sweep.py                          # ~11 min, 2 cores
    .venv/bin/python benchmarks/label_noise_sweep.py --mix swap --rates 0 0.1 --sessions 20

For each rate the demo data is generated with the same seed as a clean copy (same signals, same
sessions; only labels.csv differs), with `label_shift` and `label_swap` at rate/2 each
(`--mix both`) or one kind at the full rate. The real stages run: ingest → align → validate
(`validation.label_check: true`) → shard → train the fused model. Two datasets are sharded from
the same aligned parts: *without gate* keeps every window, *with gate* drops the windows the
gate rejected (on these data only the label check rejects anything). Both models are scored on
the test split of the clean copy (same sessions, asserted; clean labels), so the F1 measures
what the wrong labels cost, not how well the model fits them. One short training run varies by
a few hundredths of macro-F1 from seed to seed, so each F1 is the mean over `--train-seeds`.

Flags are scored per window against the clean copy's aligned labels: a window is wrong when its
label differs; windows labelled in only one copy (a boundary moved) are left out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from modalops.config.align import AlignConfig
from modalops.config.pipeline import ShardConfig
from modalops.config.train import TrainConfig
from modalops.config.validate import ValidateConfig
from modalops.evaluate.metrics import macro_f1
from modalops.shard import DatasetManifest, iter_raw_samples, write_shards
from modalops.store import ObjectStore, open_store
from modalops.train.models import load_classifier, predict_proba
from modalops.train.training import train_model
from modalops.validate import ValidationResult
from modalops_demo.detection import flag_scores, run_gate_stages, wrong_label_windows
from modalops_demo.generate import DemoDataConfig, generate_demo_data

WINDOW_S = AlignConfig().window_s  # run_gate_stages aligns at the defaults


def corrupt_spec(rate: float, mix: str) -> dict[str, float]:
    if rate <= 0:
        return {}
    if mix == "both":
        return {"label_shift": rate / 2, "label_swap": rate / 2}
    return {f"label_{mix}": rate}


def prepare(root: Path, demo: DemoDataConfig, vcfg: ValidateConfig):
    """Generate, ingest, align and validate; (store, spec, part keys, samples, verdict, seconds)."""
    generate_demo_data(open_store(str(root / "raw")), demo)
    gate = run_gate_stages(str(root / "raw"), str(root / "store"), vcfg)
    store = open_store(str(root / "store"))
    return store, gate.spec, gate.part_keys, gate.samples, gate.result, gate.seconds


def score_flags(samples: pd.DataFrame, verdict: ValidationResult, clean: pd.DataFrame) -> dict:
    """Wrong windows (label differs from the clean copy's), flagged windows, and their overlap."""
    scores = flag_scores(verdict, wrong_label_windows(samples, clean))
    return {
        "windows": len(samples),
        "wrong": scores["wrong_windows"],
        "flagged": scores["flagged"],
        "hits": scores["hits"],
        "precision": scores["flag_precision"],
        "recall": scores["flag_recall"],
    }


def train_and_score(
    store: ObjectStore,
    manifest: DatasetManifest,
    tcfg: TrainConfig,
    test_raws: list[dict],
    work_dir: Path,
) -> float:
    """Train the fused model on `manifest`; macro-F1 on the clean test samples."""
    streams = list(tcfg.streams or manifest.dataset_spec().stream_names)
    result = train_model(store, manifest, tcfg, "fused", streams, work_dir)
    with store.open_read(result.checkpoint_key) as stream:
        model, _ = load_classifier(stream.read())
    probs = predict_proba(model, test_raws)
    truth = np.array([r["label_index"] for r in test_raws])
    return macro_f1(truth, probs.argmax(axis=1), probs.shape[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rates", type=float, nargs="*", default=[0.0, 0.05, 0.1, 0.25])
    parser.add_argument("--mix", choices=["both", "shift", "swap"], default="both")
    parser.add_argument("--epochs", type=int, default=8, help="train.max_epochs (demo: 12)")
    parser.add_argument("--hidden", type=int, default=16, help="train.hidden_dim (demo: 32)")
    parser.add_argument(
        "--train-seeds",
        type=int,
        nargs="*",
        default=[7, 8],
        help="train.seed values; F1 is their mean (one 8-epoch run varies by ~0.05)",
    )
    parser.add_argument("--out", type=Path, default=None, help="append each row here as JSON")
    args = parser.parse_args()
    vcfg = ValidateConfig(label_check=True)
    scfg = ShardConfig()
    tcfgs = [
        TrainConfig(max_epochs=args.epochs, hidden_dim=args.hidden, baselines=False, seed=s)
        for s in args.train_seeds
    ]
    started = time.perf_counter()

    def demo(rate: float) -> DemoDataConfig:
        return DemoDataConfig(
            sessions=args.sessions,
            duration_s=args.duration,
            seed=args.seed,
            corrupt=corrupt_spec(rate, args.mix),
        )

    rows = []
    with tempfile.TemporaryDirectory(prefix="modalops-noise-") as tmp:
        tmp = Path(tmp)
        clean_store, spec, clean_parts, clean_samples, clean_verdict, _ = prepare(
            tmp / "clean", demo(0.0), vcfg
        )
        clean = write_shards(clean_store, spec, clean_parts, None, scfg, window_s=WINDOW_S)
        test_raws = list(iter_raw_samples(clean_store, clean, "test"))
        print(
            f"clean copy: {len(clean_samples)} windows, test split {clean.splits['test'].n_samples} "
            f"windows in {len(clean.splits['test'].sessions)} sessions",
            flush=True,
        )
        for rate in args.rates:
            if rate > 0:
                store, spec, parts, samples, verdict, (pipe_s, val_s) = prepare(
                    tmp / f"r{rate:g}", demo(rate), vcfg
                )
            else:  # the clean copy is the 0% dataset
                store, parts, samples, verdict = (
                    clean_store,
                    clean_parts,
                    clean_samples,
                    clean_verdict,
                )
            flags = score_flags(samples, verdict, clean_samples)
            del samples
            raw = write_shards(
                store, spec, parts, None, scfg, extra={"sweep": "no_gate"}, window_s=WINDOW_S
            )
            gated = write_shards(
                store, spec, parts, verdict.rejected, scfg, extra={"sweep": "gate"},
                window_s=WINDOW_S,
            )  # fmt: skip
            for manifest in (raw, gated):
                assert manifest.splits["test"].sessions == clean.splits["test"].sessions, (
                    "the noisy and clean copies must split into the same test sessions"
                )
            f1_raw = [train_and_score(store, raw, t, test_raws, tmp / "work") for t in tcfgs]
            f1_gate = [train_and_score(store, gated, t, test_raws, tmp / "work") for t in tcfgs]
            rows.append(
                {
                    "rate": rate,
                    **flags,
                    "rejected": len(verdict.rejected),
                    "gate": "PASS" if verdict.passed else "FAIL",
                    "f1_no_gate": float(np.mean(f1_raw)),
                    "f1_gate": float(np.mean(f1_gate)),
                    "f1_no_gate_runs": f1_raw,
                    "f1_gate_runs": f1_gate,
                }
            )
            r = rows[-1]
            if args.out:
                with args.out.open("a") as f:
                    f.write(json.dumps(r) + "\n")
            print(
                f"rate {rate:.0%}: wrong {r['wrong']} of {r['windows']} windows, flagged "
                f"{r['flagged']} (precision {r['precision']:.2f}, recall {r['recall']:.2f}), "
                f"gate {r['gate']}; fused macro-F1 on clean test: no gate "
                f"{' '.join(f'{x:.3f}' for x in f1_raw)}, gate {' '.join(f'{x:.3f}' for x in f1_gate)}"
                f"  [{time.perf_counter() - started:.0f} s]",
                flush=True,
            )

    print(
        f"\n{args.sessions} sessions x {args.duration:g} s, seed {args.seed}, mix {args.mix}, "
        f"clean test split {len(test_raws)} windows; "
        f"fused model, train.max_epochs={args.epochs}, train.hidden_dim={args.hidden}, "
        f"F1 = mean over train.seed {args.train_seeds}; "
        f"{time.perf_counter() - started:.0f} s in all\n"
    )
    print(
        "| label noise | wrong windows | flagged | precision | recall | gate verdict "
        "| F1 no gate | F1 with gate |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        prec = "—" if np.isnan(r["precision"]) else f"{r['precision']:.2f}"
        rec = "—" if np.isnan(r["recall"]) else f"{r['recall']:.2f}"
        print(
            f"| {r['rate']:.0%} | {r['wrong']} of {r['windows']} ({100 * r['wrong'] / r['windows']:.1f}%) "
            f"| {r['flagged']} | {prec} | {rec} | {r['gate']} "
            f"| {r['f1_no_gate']:.3f} | {r['f1_gate']:.3f} |"
        )


if __name__ == "__main__":
    main()
