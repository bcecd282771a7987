"""Bad-input fuzzing at scale: the generators of tests/test_fuzz_inputs.py (modalops/testing/fuzz.py)
with more examples per case, as a table of what ingest and align did with each kind of damage.

    .venv/bin/python benchmarks/fuzz_inputs.py                 # 50 examples per case
    .venv/bin/python benchmarks/fuzz_inputs.py --examples 10 --only audio

Columns: examples tried; quarantined with a reason naming the damaged file; tolerated (the
stream stays ok, values handled as the kind documents); flagged (ingest keeps it, a catalog
rule of the validation gate breaks on exactly that row); crashes (an exception escaped);
failed (a promise broken: e.g. quarantined without naming the file); valid samples lost.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from modalops.store import LocalStore  # noqa: E402
from modalops.testing import fuzz  # noqa: E402


def run_case(
    case: fuzz.Case, clean: fuzz.Clean, examples: int
) -> tuple[collections.Counter, int, list[str]]:
    counts: collections.Counter = collections.Counter()
    lost = [0]
    failures: list[str] = []
    first = [True]

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case.build(clean))
    def example(damage: fuzz.Damage) -> None:
        # same policy as the test, per case: the first example and every one the damage reaches
        align = True if (first[0] or case.align == "always") else None
        first[0] = False
        outcome = fuzz.run_example(clean, damage, align=align)
        counts[outcome.category] += 1
        lost[0] += outcome.lost
        if outcome.failures and len(failures) < 3:
            failures.append(f"{damage!r}: {outcome.failures[0][:400]}")

    example()  # failures are counted, not raised: the table shows them
    return counts, lost[0], failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--examples", type=int, default=50, help="hypothesis examples per case")
    ap.add_argument("--only", default="", help="run cases whose kind/name contains this")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        raw = LocalStore(tmp)
        spec = fuzz.write_fuzz_dataset(raw)
        clean = fuzz.clean_run(raw, spec)
        header = ("| kind | case | tried | quarantined (file named) | tolerated | flagged | "
                  "crashes | failed | valid samples lost |")  # fmt: skip
        print(f"bad-input fuzzing, {args.examples} examples per case\n")
        print(header)
        print("|" + "---|" * 9)
        totals: collections.Counter = collections.Counter()
        lost_total, notes = 0, []
        for case in fuzz.CASES:
            if args.only and args.only not in case.label:
                continue
            counts, lost, failures = run_case(case, clean, args.examples)
            totals.update(counts)
            totals["tried"] += sum(counts.values())
            lost_total += lost
            notes += [f"{case.label}: {f}" for f in failures]
            print(f"| {case.kind} | {case.name} | {sum(counts.values())} | {counts['quarantined']} "
                  f"| {counts['tolerated']} | {counts['flagged']} | {counts['crashed']} "
                  f"| {counts['failed']} | {lost} |", flush=True)  # fmt: skip
        print(f"| **all** | | {totals['tried']} | {totals['quarantined']} | {totals['tolerated']} "
              f"| {totals['flagged']} | {totals['crashed']} | {totals['failed']} | {lost_total} |")  # fmt: skip
        print(f"\n{time.perf_counter() - started:.0f} s")
        for n in notes:
            print("FAILED", n)
    return 1 if totals["crashed"] or totals["failed"] or lost_total else 0


if __name__ == "__main__":
    raise SystemExit(main())
