"""Bad-input fuzzing at scale: the generators of tests/test_fuzz_inputs.py (modalops/testing/fuzz.py)
with more examples per case, as a table of what ingest and align did with each kind of damage.

    .venv/bin/python benchmarks/fuzz_inputs.py                 # 50 examples per case
    .venv/bin/python benchmarks/fuzz_inputs.py --examples 10 --only audio

Columns: examples tried; measured (ingested, aligned and counted: only a crash leaves one
unmeasured); quarantined with a reason naming the damaged file; tolerated (the stream stays ok,
values handled as the kind documents); flagged (ingest keeps it, a catalog rule of the validation
gate breaks on exactly that row); crashed (an exception escaped); failed (a promise broken: e.g.
quarantined without naming the file, or a valid window lost). Windows, summed over the measured
examples: expected (the clean run's windows each damage must leave identical: the other
sessions', and the damaged session's on its undamaged streams), kept identical, lost; at stake
(the damaged session's windows when its reference stream, which defines the windows and every
other stream's clock, or its whole folder was damaged: not promised), of which still cut (same
index and label) and identical on the undamaged streams.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from modalops.store import LocalStore  # noqa: E402
from modalops.testing import fuzz  # noqa: E402


def run_case(
    case: fuzz.Case, clean: fuzz.Clean, memo: fuzz.AlignMemo, tally: fuzz.Tally, examples: int
) -> list[str]:
    """Every example of one case into `tally`; the first failures, for the notes."""
    tally.clear(case.label)
    failures: list[str] = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case.build(clean))
    def example(damage: fuzz.Damage) -> None:
        outcome = fuzz.run_example(clean, damage, memo)
        tally.add(case.label, outcome)
        if outcome.failures and len(failures) < 3:
            failures.append(f"{damage!r}: {outcome.failures[0][:400]}")

    example()  # failures are counted, not raised: the table shows them
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--examples", type=int, default=50, help="hypothesis examples per case")
    ap.add_argument("--only", default="", help="run cases whose kind/name contains this")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        raw = LocalStore(tmp)
        clean = fuzz.clean_run(raw, fuzz.write_fuzz_dataset(raw))
        memo, tally, notes = fuzz.AlignMemo(), fuzz.Tally(), []
        cases = [c for c in fuzz.CASES if args.only in c.label]
        for case in cases:
            failures = run_case(case, clean, memo, tally, args.examples)
            notes += [f"{case.label}: {f}" for f in failures]
        total = tally.total()
        print(f"bad-input fuzzing, {args.examples} examples per case\n")
        print(tally.table(cases))
        print(f"\n{tally.summary(memo)}; {time.perf_counter() - started:.0f} s")
        for n in notes:
            print("FAILED", n)
    unmeasured = total["tried"] - total["measured"]
    return 1 if total["crashed"] or total["failed"] or total["lost"] or unmeasured else 0


if __name__ == "__main__":
    raise SystemExit(main())
