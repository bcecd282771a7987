"""Bad-input fuzzing per stream kind (hypothesis): ONE file of ONE session of a tiny valid dataset
is damaged (truncated, garbage, wrong headers, encodings, NaN/inf/huge values, timestamps out of
order or repeated, empty, wrong rates, missing file or folder) and ingest must quarantine it with
a reason naming the file, or tolerate it as the kind's documented checks say
(modalops/testing/fuzz.py states each case's decision); never crash, keep every other session's
catalog rows identical to the clean run's, and at align keep every valid window: each example is
aligned and its windows counted against the clean run's (the other sessions' windows, and the
damaged session's on its undamaged streams).

    .venv/bin/python -m pytest -q -s tests/test_fuzz_inputs.py   # -s prints the summary table
"""

from __future__ import annotations

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

TALLY = fuzz.Tally()  # per case: outcome categories and the measured windows
STARTED = time.perf_counter()


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> fuzz.Clean:
    raw = LocalStore(tmp_path_factory.mktemp("fuzz-raw"))
    spec = fuzz.write_fuzz_dataset(raw)
    return fuzz.clean_run(raw, spec)


@pytest.fixture(scope="module")
def memo() -> fuzz.AlignMemo:
    """One memo for every case: a stream quarantined by any case's damage is aligned once."""
    return fuzz.AlignMemo()


def fuzz_case(case: fuzz.Case, clean: fuzz.Clean, memo: fuzz.AlignMemo) -> None:
    """Run one case's examples, each ingested, aligned and measured; raises on the first failing
    example (hypothesis shrinks it)."""
    TALLY.clear(case.label)

    @FUZZ
    @given(case.build(clean))
    def example(damage: fuzz.Damage) -> None:
        outcome = fuzz.run_example(clean, damage, memo)
        TALLY.add(case.label, outcome)
        assert not outcome.failures, "\n".join(outcome.failures)
        assert outcome.windows is not None, f"{damage!r} was not measured"

    example()


@pytest.mark.parametrize("case", fuzz.CASES, ids=lambda c: c.label)
def test_damaged_file_is_quarantined_or_tolerated(
    case: fuzz.Case, clean: fuzz.Clean, memo: fuzz.AlignMemo
):
    fuzz_case(case, clean, memo)
    counts = TALLY.cases[case.label]
    assert counts["tried"] >= 1 and counts["measured"] == counts["tried"]
    assert counts["crashed"] == 0 and counts["failed"] == 0


def test_clean_dataset_is_clean(clean: fuzz.Clean):
    """The baseline the fuzz compares with: every stream ok, every window aligned."""
    assert (clean.run.catalog["status"] == "ok").all()
    per_session = clean.aligned.samples.groupby("session_id").size()
    # 6 one-second windows per session, less any straddling a label boundary
    assert set(per_session.index) == set(fuzz.SESSIONS) and (per_session >= 5).all()
    for s in clean.spec.stream_names:
        assert clean.aligned.samples[f"{s}:present"].sum() >= 8, s


def test_a_loss_in_a_quarantined_example_is_counted(clean: fuzz.Clean, monkeypatch):
    """A quarantined stream is where its session's other windows could go: a loss there (here a
    window of the other session dropped by align) is counted, not assumed to be 0."""
    import modalops.align.dataset as align_mod

    key = clean.key("rec-000", "mic")
    damage = fuzz.Damage("audio", "garbage", "rec-000", "mic", key, {key: b"not a wav"},
                         "quarantine")  # fmt: skip
    align_session = align_mod.align_session

    def drop_last_window_of_rec_001(session, *args, **kwargs):
        out = align_session(session, *args, **kwargs)
        if session.session_id == "rec-001":
            out.samples = out.samples.iloc[:-1]
        return out

    monkeypatch.setattr(align_mod, "align_session", drop_last_window_of_rec_001)
    outcome = fuzz.run_example(clean, damage)  # no memo: this alignment is not the real one
    assert outcome.category == "failed"
    assert outcome.lost == 1
    expected = len(clean.aligned.samples)  # both sessions' windows; mic is not the reference
    assert f"1 of {expected} valid windows lost" in "\n".join(outcome.failures)


def test_fuzz_summary(clean: fuzz.Clean, memo: fuzz.AlignMemo):
    """At least 200 examples across the kinds, every one measured, none crashed, and the valid
    windows lost counted from those measurements: 0."""
    for case in fuzz.CASES:  # cases deselected with -k still count towards the total
        if case.label not in TALLY.cases:
            fuzz_case(case, clean, memo)
    total = TALLY.total()
    print(
        "\nbad-input fuzzing (tests/test_fuzz_inputs.py)\n"
        + TALLY.table(fuzz.CASES)
        + f"\n{TALLY.summary(memo)}; {time.perf_counter() - STARTED:.1f} s"
    )
    assert total["tried"] >= MIN_EXAMPLES
    assert total["measured"] == total["tried"]
    assert total["crashed"] == total["failed"] == 0
    # every example promises at least the other session's windows: a count was made for each
    others = len(clean.aligned.samples) - clean.aligned.samples.groupby("session_id").size().max()
    assert total["expected"] >= others * total["measured"] > 0
    assert total["lost"] == total["expected"] - total["kept"] == 0
    assert {c.kind for c in fuzz.CASES} >= {"image", "video", "audio", "timeseries", "text"}
