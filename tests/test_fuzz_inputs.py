"""Bad-input fuzzing per stream kind (hypothesis): ONE file of ONE session of a tiny valid dataset
is damaged (truncated, garbage, wrong headers, encodings, NaN/inf/huge values, timestamps out of
order or repeated, empty, wrong rates, missing file or folder) and ingest (plus align where the
damage reaches it) must quarantine it with a reason naming the file, or tolerate it as the kind's
documented checks say (modalops/testing/fuzz.py states each case's decision); never crash, and
keep every other session's catalog rows and aligned windows identical to the clean run's.

    .venv/bin/python -m pytest -q -s tests/test_fuzz_inputs.py   # -s prints the summary table
"""

from __future__ import annotations

import collections
import time

import pytest
from hypothesis import HealthCheck, given, settings

from modalops.store import LocalStore
from modalops.testing import fuzz

EXAMPLES_PER_CASE = 5  # about 250 examples in all (cases with few distinct inputs stop sooner)
MIN_EXAMPLES = 200
FUZZ = settings(
    max_examples=EXAMPLES_PER_CASE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
    derandomize=True,  # the same examples on every run: CI is reproducible
    database=None,
)  # fmt: skip

# case label -> outcome category -> count, and valid samples lost; filled by the tests below
TALLY: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
LOST: collections.Counter = collections.Counter()
ALIGNED: set[str] = set()  # kinds whose first example was aligned
STARTED = time.perf_counter()


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> fuzz.Clean:
    raw = LocalStore(tmp_path_factory.mktemp("fuzz-raw"))
    spec = fuzz.write_fuzz_dataset(raw)
    return fuzz.clean_run(raw, spec)


def fuzz_case(case: fuzz.Case, clean: fuzz.Clean) -> list[str]:
    """Run one case's examples; the failures of the first failing example (hypothesis shrinks)."""
    TALLY[case.label].clear()
    LOST[case.label] = 0

    @FUZZ
    @given(case.build(clean))
    def example(damage: fuzz.Damage) -> None:
        # align: every example of cases whose damage only shows there, the first example of
        # each kind, and any example whose damaged file passed ingest
        align = True if (case.kind not in ALIGNED or case.align == "always") else None
        ALIGNED.add(case.kind)
        outcome = fuzz.run_example(clean, damage, align=align)
        TALLY[case.label][outcome.category] += 1
        LOST[case.label] += outcome.lost
        assert not outcome.failures, "\n".join(outcome.failures)

    example()
    return []


@pytest.mark.parametrize("case", fuzz.CASES, ids=lambda c: c.label)
def test_damaged_file_is_quarantined_or_tolerated(case: fuzz.Case, clean: fuzz.Clean):
    fuzz_case(case, clean)
    counts = TALLY[case.label]
    assert sum(counts.values()) >= 1
    assert counts["crashed"] == 0 and counts["failed"] == 0


def test_clean_dataset_is_clean(clean: fuzz.Clean):
    """The baseline the fuzz compares with: every stream ok, every window aligned."""
    assert (clean.run.catalog["status"] == "ok").all()
    per_session = clean.run.samples.groupby("session_id").size()
    # 6 one-second windows per session, less any straddling a label boundary
    assert set(per_session.index) == set(fuzz.SESSIONS) and (per_session >= 5).all()
    for s in clean.spec.stream_names:
        assert clean.run.samples[f"{s}:present"].sum() >= 8, s


def test_fuzz_summary(clean: fuzz.Clean):
    """At least 200 examples across the kinds, none crashed, 0 valid samples lost."""
    for case in fuzz.CASES:  # cases deselected with -k still count towards the total
        if not TALLY[case.label]:
            fuzz_case(case, clean)
    total = sum(sum(c.values()) for c in TALLY.values())
    rows = [
        f"{case.kind:<10} {case.name:<22} {sum(TALLY[case.label].values()):>5} "
        f"{TALLY[case.label]['quarantined']:>6} {TALLY[case.label]['tolerated']:>5} "
        f"{TALLY[case.label]['flagged']:>5} {TALLY[case.label]['crashed']:>5} "
        f"{LOST[case.label]:>5}"
        for case in fuzz.CASES
    ]
    print(
        "\nbad-input fuzzing (tests/test_fuzz_inputs.py)\n"
        f"{'kind':<10} {'case':<22} {'tried':>5} {'quar.':>6} {'tol.':>5} {'flag':>5} "
        f"{'crash':>5} {'lost':>5}\n" + "\n".join(rows) + f"\n{total} examples, "
        f"{sum(LOST.values())} valid samples lost, {time.perf_counter() - STARTED:.1f} s"
    )
    assert total >= MIN_EXAMPLES
    assert sum(LOST.values()) == 0
    assert sum(c["crashed"] + c["failed"] for c in TALLY.values()) == 0
    assert {c.kind for c in fuzz.CASES} >= {"image", "video", "audio", "timeseries", "text"}
