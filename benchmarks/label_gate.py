"""Label gate, side by side: the hand-written confident-learning flags against cleanlab's label-issue
search on the same out-of-fold probabilities, on clean labels and with injected swaps (issue 22).

    .venv/bin/python -m benchmarks.label_gate --demo 20             # the demo, 20 sessions
    .venv/bin/python -m benchmarks.label_gate --raw DIR --truth DIR  # a raw root with a dataset.yaml

Each raw root is ingested and aligned once at the defaults (its spec's clocks); the check's
per-window features are computed once. Then, for each swap rate, `rate` of the labelled windows
get another class drawn at random (seeded), and every method judges the same probabilities.
Flags are scored against the injected windows: on clean labels every flag is a false flag.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.real.compose import with_true_clocks
from modalops.config.align import AlignConfig
from modalops.config.data import IngestConfig
from modalops.config.validate import ValidateConfig
from modalops.dataset.spec import SPEC_FILE, spec_from_text
from modalops.ingest import ingest_recordings
from modalops.runs import get_frame
from modalops.store import open_store
from modalops.validate.label_check import (
    judge_labels,
    label_check_streams,
    label_features,
    out_of_fold_probs,
)


def aligned_samples(raw_uri: str, work: Path):
    """Ingest and align `raw_uri` at the defaults; (spec, samples with payloads)."""
    from modalops.align import align_dataset

    raw = open_store(raw_uri)
    spec = spec_from_text(raw.get_bytes(SPEC_FILE).decode("utf-8"), raw.uri(SPEC_FILE))
    ingested = ingest_recordings(raw, spec, IngestConfig(raw_uri=raw_uri))
    out = open_store(str(work))
    aligned = align_dataset(
        raw, spec, ingested.catalog, AlignConfig(), out, "run", ingested.quarantine
    )
    samples = pd.concat([get_frame(out, k) for k in aligned.part_keys], ignore_index=True)
    return spec, samples


def inject_swaps(
    given: np.ndarray, rate: float, n_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, swapped mask): `rate` of the labelled rows get another class at random."""
    rng = np.random.default_rng(seed)
    noisy = given.copy()
    labelled = np.flatnonzero(given >= 0)
    pick = rng.choice(labelled, size=int(round(rate * len(labelled))), replace=False)
    shift = rng.integers(1, n_classes, size=len(pick))
    noisy[pick] = (given[pick] + shift) % n_classes
    swapped = np.zeros(len(given), dtype=bool)
    swapped[pick] = True
    return noisy, swapped


def confident_flags(probs: np.ndarray, given: np.ndarray, n_classes: int) -> np.ndarray:
    """The hand-written confident-joint flags the label check used before cleanlab (issue 22),
    kept here to measure against: flagged when the most probable class at or above its
    threshold (mean self-confidence of its windows) is not the given one, and the given class
    is below its own threshold."""
    t = np.array(
        [probs[given == j, j].mean() if (given == j).any() else 1.0 for j in range(n_classes)]
    )
    above = probs >= t[None, :]
    suggested = np.where(above.any(axis=1), np.where(above, probs, -1.0).argmax(axis=1), -1)
    self_conf = probs[np.arange(len(given)), given]
    return (suggested >= 0) & (suggested != given) & (self_conf < t[given])


def ours(features, y, groups, n_classes, vcfg) -> np.ndarray:
    keep = np.ones(len(y), dtype=bool)
    for _ in range(vcfg.label_check_rounds):
        p, _ = out_of_fold_probs(features, y, groups, n_classes, vcfg.label_check_folds,
                                 vcfg.label_check_c, train_mask=keep)  # fmt: skip
        flagged = confident_flags(p, y, n_classes)
        keep = ~flagged
    return flagged


def row(case: str, rate: float, method: str, flagged: np.ndarray, swapped: np.ndarray,
        extra: str = "", seconds: float = float("nan")) -> dict:  # fmt: skip
    clean = ~swapped
    tp = int((flagged & swapped).sum())
    return {
        "case": case,
        "swaps": f"{rate:.0%}",
        "method": method,
        "windows": len(flagged),
        "flagged": f"{flagged.mean():.1%}",
        "clean flagged": f"{(flagged & clean).sum() / max(clean.sum(), 1):.1%}",
        "recall": f"{tp / swapped.sum():.2f}" if swapped.any() else "—",
        "precision": f"{tp / flagged.sum():.2f}" if flagged.any() else "—",
        "gate": extra,
        "s": f"{seconds:.1f}",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw", action="append", default=[], help="raw root(s) with a dataset.yaml")
    ap.add_argument(
        "--truth", action="append", default=[], help="per --raw: its truth folder (true clocks)"
    )
    ap.add_argument("--demo", type=int, default=0, help="also the demo with this many sessions")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.1])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--sure-p", type=float, nargs="+", default=[ValidateConfig().label_check_sure_p]
    )
    ap.add_argument("--rounds", type=int, nargs="+", default=[ValidateConfig().label_check_rounds])
    args = ap.parse_args()
    vcfg = ValidateConfig()
    rows = []
    with tempfile.TemporaryDirectory(prefix="modalops-label-gate-") as tmp:
        roots = []
        for i, r in enumerate(args.raw):
            name = Path(r).resolve().parent.name if Path(r).name == "raw" else Path(r).name
            if i < len(args.truth):
                r = with_true_clocks(Path(r), Path(args.truth[i]), Path(tmp) / name)
            roots.append((name, r))
        if args.demo:
            from modalops_demo.generate import DemoDataConfig, generate_demo_data

            demo_raw = str(Path(tmp) / "demo-raw")
            generate_demo_data(
                open_store(demo_raw), DemoDataConfig(sessions=args.demo, seed=args.seed)
            )
            roots.append((f"demo-{args.demo}", demo_raw))
        for case, raw in roots:
            spec, samples = aligned_samples(raw, Path(tmp) / f"{case}-aligned")
            index = spec.labels.index()
            given = np.array(
                [index.get(x, -1) for x in samples["label"].astype("string").fillna("")]
            )
            keep = given >= 0
            samples, given = samples[keep].reset_index(drop=True), given[keep]
            groups = samples["session_id"].astype(str).to_numpy()
            t0 = time.perf_counter()
            feats = label_features(samples, spec, label_check_streams(spec, vcfg))
            feat_s = time.perf_counter() - t0
            print(f"{case}: {len(samples)} windows, {feats.shape[1]} features ({feat_s:.1f} s)")
            n_classes = len(index)
            for rate in args.rates:
                noisy, swapped = inject_swaps(given, rate, n_classes, args.seed + 1)
                t0 = time.perf_counter()
                rows.append(row(case, rate, "before: hand-written CL, 2 rounds",
                                ours(feats, noisy, groups, n_classes, vcfg), swapped,
                                seconds=time.perf_counter() - t0))  # fmt: skip
                for sure_p in args.sure_p:
                    for rounds in args.rounds:
                        cfg = vcfg.model_copy(
                            update={"label_check_sure_p": sure_p, "label_check_rounds": rounds}
                        )
                        t0 = time.perf_counter()
                        judged = judge_labels(feats, noisy, groups, n_classes, cfg)
                        rows.append(row(case, rate, f"cleanlab p>={sure_p:g} r{rounds}",
                                        judged.flagged, swapped, f"{judged.summary()}",
                                        time.perf_counter() - t0))  # fmt: skip
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
