"""Runner of the real-data suite: build each case, align it with the platform, score, print."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.real import counting, gait, motions, score, spoken_digits
from modalops.config.align import AlignConfig

# case -> (builder taking (out, cache, n), full size, small size, baseline window and hop in s)
CASES = {
    "motions": (motions.build, 8, 1, (2.0, 1.0)),
    "spoken_digits": (spoken_digits.build, 12, 1, (0.4, 0.1)),  # words last 0.3-0.8 s
    "counting": (counting.build, 6, 1, (0.4, 0.1)),
    "gait": (gait.build, 14, 2, None),  # one recording, one activity: alignment only
}
CONF_BINS = [0.0, 3.0, 6.0, 10.0, np.inf]


def build_and_align(names: list[str], out: Path, cache: Path, small: bool, cfg: AlignConfig):
    """(case outputs, scored streams) of the named cases."""
    cases, scored = {}, []
    for name in names:
        build, full, tiny, _ = CASES[name]
        t0 = time.perf_counter()
        case = build(out, cache, tiny if small else full)
        report = score.run_alignment(case, out / "_work", cfg)
        scored.append(score.score(case, report, cfg.min_confidence))
        cases[name] = case
        print(f"  {name}: built and aligned in {time.perf_counter() - t0:.1f} s", flush=True)
    return cases, pd.concat(scored, ignore_index=True)


def control_table(cases: dict, out: Path, cfg: AlignConfig) -> str:
    """Each case with its streams moved to the wrong sessions: how many are still trusted."""
    lines = ["| case | streams | above min_confidence (each a confident wrong offset) | highest confidence |",
             "|---|---|---|---|"]  # fmt: skip
    for name, case in cases.items():
        control = score.swapped(case, out / "_control")
        report = score.run_alignment(control, out / "_work", cfg)
        sc = score.score(control, report, cfg.min_confidence)
        lines.append(f"| {name} | {len(sc)} | {int(sc['confident'].sum())} "
                     f"| {sc['confidence'].max():.1f} |")  # fmt: skip
    return "\n".join(lines)


def alignment_table(cases: dict, scored: pd.DataFrame, min_conf: float) -> str:
    lines = [
        f"| case | streams | within tolerance | above min_confidence ({min_conf:g}) | of those within "
        "| median abs error (confident) | tolerance | quarter period | cues chosen |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, case in cases.items():
        sc = scored[scored["case"] == name]
        s = score.summary(case, sc)
        conf = sc[sc["confident"]]
        cues = ", ".join(f"{k} {v}" for k, v in conf["cue"].value_counts().items()) or "-"
        within_conf = f"{s['confident_within']}/{s['confident']}" if s["confident"] else "-"
        lines.append(
            f"| {name} | {s['streams']} | {s['within']}/{s['streams']} | {s['confident']}/{s['streams']} "
            f"| {within_conf} | {s['median_error_s']:.3f} s | {case.tolerance_s:g} s "
            f"| {s['quarter_period_s']:.3f} s | {cues} |"
        )
    conf = scored[scored["confident"]]
    lines.append(
        f"| **all** | {len(scored)} | {int(scored['within'].sum())}/{len(scored)} "
        f"| {len(conf)}/{len(scored)} ({len(conf) / max(len(scored), 1):.0%}) "
        f"| {int(conf['within'].sum())}/{len(conf)} ({conf['within'].mean():.1%}) | | | | |"
    )
    return "\n".join(lines)


def reliability_table(scored: pd.DataFrame) -> str:
    """Confidence bins against how often the estimate is within tolerance."""
    lines = ["| confidence | streams | within tolerance |", "|---|---|---|"]
    est = scored[scored["method"].isin(["estimate", "metadata"])]
    for lo, hi in zip(CONF_BINS[:-1], CONF_BINS[1:], strict=True):
        b = est[(est["confidence"] >= lo) & (est["confidence"] < hi)]
        if len(b) == 0:
            continue
        lines.append(f"| {lo:g}-{hi:g} | {len(b)} | {int(b['within'].sum())}/{len(b)} "
                     f"({b['within'].mean():.0%}) |")  # fmt: skip
    return "\n".join(lines)


def reasons_table(scored: pd.DataFrame) -> str:
    """Why the streams below min_confidence were not trusted (first words of each reason)."""
    low = scored[~scored["confident"]]
    if low.empty:
        return "(every stream above min_confidence)"
    kind = low["reason"].fillna("").str.split(":").str[0]
    return "\n".join(f"- {k}: {v}" for k, v in kind.value_counts().items())


def baseline_table(cases: dict) -> str:
    from benchmarks.real.baselines import evaluate

    lines = [
        "| case | train / test windows | per stream macro-F1 | fused macro-F1 |",
        "|---|---|---|---|",
    ]
    for name, case in cases.items():
        win = CASES[name][3]
        if win is None:
            lines.append(f"| {name} | - | alignment-only case | - |")
            continue
        r = evaluate(case, *win)
        per = ", ".join(
            f"{k} {v:.3f}"
            for k, v in r.items()
            if k not in ("fused", "train_windows", "test_windows")
        )
        lines.append(
            f"| {name} | {r['train_windows']} / {r['test_windows']} | {per} | {r['fused']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(".modalops/real"))
    parser.add_argument("--cache", type=Path, default=Path(".modalops/cache"))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument(
        "--small", action="store_true", help="a session or two per case, alignment only"
    )
    parser.add_argument("--min-confidence", type=float, default=AlignConfig().min_confidence)
    args = parser.parse_args()
    cfg = AlignConfig(min_confidence=args.min_confidence)
    t0 = time.perf_counter()
    cases, scored = build_and_align(args.cases.split(","), args.out, args.cache, args.small, cfg)
    print("\nAlignment (the platform's align report, scored against the truth files)\n")
    print(alignment_table(cases, scored, cfg.min_confidence))
    print("\nReliability: confidence against being within tolerance (all estimated streams)\n")
    print(reliability_table(scored))
    print("\nStreams below min_confidence, by reason\n")
    print(reasons_table(scored))
    print("\nControl: every estimated stream moved to the next session (none belongs there)\n")
    print(control_table(cases, args.out, cfg))
    if not args.small:
        print("\nClassical baselines (true clocks; test split: held-out voices / recordings)\n")
        print(baseline_table(cases))
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
