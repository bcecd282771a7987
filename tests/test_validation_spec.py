"""The validate stage on a dataset that is not the demo: two time-series streams at other rates
and a text stream, three classes, other metadata. Suites, statistics, subgroups and the label
check must all come from its spec."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from modalops.config.validate import ValidateConfig
from modalops.dataset.columns import sample_columns
from modalops.dataset.spec import parse_spec
from modalops.kinds.timeseries.window import npy_bytes
from modalops.testing.samples import make_catalog
from modalops.validate import sample_stats, validate_dataset
from modalops.validate.gate import drift_statistics
from modalops.validate.suites import catalog_rules, sample_rules

SPEC = parse_spec(
    {
        "name": "wrist-study",
        "sessions": {"table": "participants.csv", "id_column": "recording"},
        "reference": "wrist_acc",
        "streams": {
            "wrist_acc": {
                "kind": "timeseries",
                "path": "acc.csv",
                "params": {"time_column": "ts", "channels": ["x", "y", "z"], "sample_rate": 50},
                "cue": "magnitude_envelope",
            },
            "gyro": {
                "kind": "timeseries",
                "path": "gyro.parquet",
                "params": {"time_column": "time_ms", "time_unit": "ms", "channels": ["gx", "gy"],
                           "sample_rate": 25},
                "checks": {"abs_max": 50.0},
            },  # fmt: skip
            "transcript": {"kind": "text", "path": "words.jsonl", "required": False},
        },
        "labels": {"classes": ["walk", "sit", "stand"], "source": "session", "column": "activity"},
        "metadata": {"columns": ["cohort", "device"], "subject": "participant",
                     "slices": ["cohort"]},
    }
)  # fmt: skip
CLASSES = SPEC.labels.classes
WINDOW_S = 2.0
N_SESSIONS, WINDOWS = 10, 30


def signals(rng: np.random.Generator, label: str, gain: float) -> tuple[bytes, bytes]:
    """walk: a 2 Hz swing on every axis; stand: a 6 Hz tremor on y; sit: sensor noise only."""
    t50 = np.arange(int(50 * WINDOW_S)) / 50
    t25 = np.arange(int(25 * WINDOW_S)) / 25
    acc = rng.normal(0, 0.05, (t50.size, 3))
    gyro = rng.normal(0, 0.05, (t25.size, 2))
    if label == "walk":
        acc += gain * np.sin(2 * np.pi * 2 * t50 + rng.uniform(0, 6))[:, None]
        gyro += gain * np.cos(2 * np.pi * 2 * t25)[:, None]
    elif label == "stand":
        acc[:, 1] += 0.4 * gain * np.sin(2 * np.pi * 6 * t50 + rng.uniform(0, 6))
        gyro[:, 0] += 0.4 * gain * np.sin(2 * np.pi * 6 * t25)
    return npy_bytes(acc + 9.81 * np.array([0, 0, 1])), npy_bytes(gyro)


def make_samples(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(N_SESSIONS):
        gain = rng.uniform(0.6, 1.4)  # how tight the strap is, per participant
        labels: list[str] = []
        while len(labels) < WINDOWS:
            labels += [str(rng.choice(CLASSES))] * int(rng.integers(3, 7))
        for w, label in enumerate(labels[:WINDOWS]):
            acc, gyro = signals(rng, label, gain)
            words = "stairs again" if w % 7 == 0 else ""
            rows.append(
                {
                    "session_id": f"rec-{s}", "window_index": w, "t_start": w * WINDOW_S,
                    "t_end": (w + 1) * WINDOW_S, "label": label, "label_overlap": 1.0,
                    "boundary": False, "align_confidence": np.nan,
                    "has__wrist_acc": True, "has__gyro": True, "has__transcript": bool(words),
                    "x__wrist_acc": acc, "x__gyro": gyro, "x__transcript": words,
                    "cohort": ("young", "older")[s % 2], "device": f"band-{s % 3}",
                    "subject": f"p{s}",
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=sample_columns(SPEC))


@pytest.fixture(scope="module")
def samples() -> pd.DataFrame:
    return make_samples()


CFG = ValidateConfig(label_check_min_windows=0)


def test_suites_come_from_the_spec():
    names = [r.check for r in sample_rules(SPEC, CFG)]
    for stream in ("wrist_acc", "gyro"):
        for check in ("decodable", "rate", "nan_fraction", "flat_channels"):
            assert f"{stream}_{check}" in names
    assert "gyro_max" in names and "wrist_acc_max" not in names  # abs_max only on gyro
    assert {"transcript_utf8", "transcript_length"} <= set(names)
    rate = next(r for r in sample_rules(SPEC, CFG) if r.check == "gyro_rate")
    assert (rate.column, rate.min_value, rate.max_value) == ("gyro__rate", 20.0, 30.0)
    label = next(r for r in sample_rules(SPEC, CFG) if r.check == "label_in_set")
    assert label.value_set == ("walk", "sit", "stand")
    catalog = {r.check: r for r in catalog_rules(SPEC, CFG)}
    assert catalog["catalog_stream"].value_set == (
        "wrist_acc",
        "gyro",
        "transcript",
        "clock",
        "labels",
    )
    assert catalog["catalog_wrist_acc_rate"].min_value == pytest.approx(40.0)


def test_stats_have_one_block_per_stream(samples):
    stats = sample_stats(samples, SPEC)
    assert np.allclose(stats["wrist_acc__rate"], 50.0) and np.allclose(stats["gyro__rate"], 25.0)
    assert (stats["gyro__flat_channels"] == 0).all()
    assert stats.loc[~stats["has__transcript"], "transcript__len"].isna().all()
    assert {"cohort", "device", "subject"} <= set(stats.columns)
    assert drift_statistics(SPEC, CFG) == [
        "wrist_acc__std", "wrist_acc__nan_fraction", "gyro__std", "gyro__nan_fraction",
        "transcript__len", "align_confidence", "label",
    ]  # fmt: skip


def test_gate_on_a_clean_dataset(samples):
    result = validate_dataset(SPEC, make_catalog(samples, SPEC), samples, CFG)
    names = {c.check: c for c in result.checks}
    assert result.passed, result.table_markdown()
    assert [c for c in names if c.startswith("min_samples_per_")] == ["min_samples_per_cohort"]
    assert "wrist_acc+gyro" in names["completeness"].expected  # transcript is optional
    assert names["label_consistency"].observed.startswith("estimated noise 0.00%; 0 of 300")
    labels = result.summary[result.summary["statistic"] == "label"]
    assert list(labels["category"]) == ["walk", "sit", "stand"]


def test_defects_and_wrong_labels_are_rejected_with_their_reason(samples):
    bad = samples.copy()
    flat = np.load(io.BytesIO(bad.at[5, "x__gyro"]))
    flat[:, 1] = 0.25
    bad.at[5, "x__gyro"] = npy_bytes(flat)
    rng = np.random.default_rng(3)
    swapped = rng.choice(np.arange(10, len(bad)), size=24, replace=False)
    for i in swapped:
        bad.at[i, "label"] = next(c for c in CLASSES if c != bad.at[i, "label"])
    result = validate_dataset(SPEC, make_catalog(bad, SPEC), bad, CFG)
    reasons = dict(zip(zip(result.rejected["session_id"], result.rejected["window_index"],
                           strict=True), result.rejected["reason"], strict=True))  # fmt: skip
    assert reasons[("rec-0", 5)].startswith("gyro_flat_channels: gyro__flat_channels=1")
    q = result.quarantine.set_index(["session_id", "window_index"])
    assert q.loc[("rec-0", 5), "stream"] == "gyro"
    flagged = {k for k, r in reasons.items() if r.startswith("label_inconsistent: given ")}
    wrong = set(zip(bad["session_id"][swapped], bad["window_index"][swapped], strict=True))
    assert len(flagged & wrong) >= 12, (len(flagged & wrong), len(flagged))
    assert len(flagged & wrong) >= 0.8 * len(flagged)
    assert all(r.split(",")[0].split()[-1] in CLASSES for k, r in reasons.items() if k in flagged)
