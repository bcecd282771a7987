"""Drift checks: PSI / KS of per-stream summaries against a reference dataset summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modalops.config.validate import ValidateConfig
from modalops.validate import drift_checks, summarize_for_reference
from modalops.validate.drift import ks_from_quantiles, psi_from_quantiles
from modalops.validate.gate import drift_statistics
from modalops.validate.stats import QUANTILE_COLUMNS
from modalops_demo.names import demo_spec

SPEC = demo_spec()
LABELS = SPEC.labels.classes


def synthetic_stats(n: int, seed: int, brightness_shift: float = 0.0, labels=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "camera__brightness": np.clip(rng.normal(0.45 + brightness_shift, 0.08, n), 0, 1),
            "camera__blur": rng.lognormal(6, 0.3, n),
            "audio__rms": rng.lognormal(-2.5, 0.2, n),
            "audio__clip_fraction": np.zeros(n),  # constant: must not produce NaN or inf
            "vibration__std": rng.lognormal(0, 0.2, n),
            "vibration__nan_fraction": np.zeros(n),
            "notes__len": rng.integers(0, 40, n).astype(float),
            "align_confidence": rng.uniform(5, 20, n),
            "label": rng.choice(list(LABELS), n, p=labels or [0.55, 0.15, 0.15, 0.15]),
        }
    )
    for m in SPEC.stream_names:
        df[f"has__{m}"] = True
    return df


def test_summary_has_quantiles_and_class_shares():
    summary = summarize_for_reference(synthetic_stats(2000, 0), SPEC)
    row = summary[summary["statistic"] == "camera__brightness"].iloc[0]
    assert row["stream"] == "camera" and row["n"] == 2000
    qs = row[list(QUANTILE_COLUMNS)].to_numpy(float)
    assert np.all(np.diff(qs) >= 0) and qs[25] == pytest.approx(0.45, abs=0.01)
    labels = summary[summary["statistic"] == "label"].set_index("category")["mean"]
    assert list(labels.index) == list(LABELS)
    assert labels.sum() == pytest.approx(1.0) and labels["normal"] == pytest.approx(0.55, abs=0.03)
    presence = summary[summary["statistic"] == "has__notes"].iloc[0]
    assert presence["kind"] == "category" and presence["mean"] == 1.0


def test_default_statistics_are_the_kinds_drift_stats():
    assert drift_statistics(SPEC, ValidateConfig()) == [
        "camera__brightness", "camera__blur", "audio__rms", "audio__clip_fraction",
        "vibration__std", "vibration__nan_fraction", "notes__len", "align_confidence", "label",
    ]  # fmt: skip
    chosen = ValidateConfig(drift_statistics=["label"])
    assert drift_statistics(SPEC, chosen) == ["label"]


def test_no_reference_skips_with_a_passing_note():
    summary = summarize_for_reference(synthetic_stats(100, 0), SPEC)
    checks = drift_checks(summary, None, ValidateConfig())
    assert len(checks) == 1 and checks[0].passed and checks[0].observed == "skipped"
    assert "no champion" in checks[0].details


@pytest.mark.parametrize("metric,threshold", [("psi", 0.25), ("ks", 0.2)])
def test_same_distribution_passes_and_shift_fails(metric, threshold):
    cfg = ValidateConfig(drift_metric=metric, drift_threshold=threshold)
    stats = drift_statistics(SPEC, cfg)
    ref = summarize_for_reference(synthetic_stats(3000, 1), SPEC)
    same = summarize_for_reference(synthetic_stats(3000, 2), SPEC)
    shifted = summarize_for_reference(
        synthetic_stats(3000, 3, brightness_shift=0.15, labels=[0.1, 0.3, 0.3, 0.3]), SPEC
    )
    ok = {c.check: c for c in drift_checks(same, ref, cfg, stats)}
    assert len(ok) == len(stats)
    assert all(c.passed for c in ok.values()), [c for c in ok.values() if not c.passed]
    bad = {c.check: c for c in drift_checks(shifted, ref, cfg, stats)}
    assert not bad["drift_camera__brightness"].passed and not bad["drift_label"].passed
    assert bad["drift_camera__blur"].passed and bad["drift_audio__clip_fraction"].passed
    assert bad["drift_camera__brightness"].severity == "warn"  # drift warns unless configured
    cfg_fail = ValidateConfig(drift_metric=metric, severity={"drift_*": "fail"})
    assert {c.severity for c in drift_checks(shifted, ref, cfg_fail, stats)} == {"fail"}


def test_psi_and_ks_agree_with_direct_estimates():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 20000), rng.normal(0.5, 1, 20000)
    qa, qb = np.quantile(a, np.linspace(0, 1, 51)), np.quantile(b, np.linspace(0, 1, 51))
    # True KS between N(0,1) and N(0.5,1) is 2*Phi(0.25)-1 ≈ 0.197.
    assert ks_from_quantiles(qa, qb) == pytest.approx(0.197, abs=0.04)
    assert psi_from_quantiles(qa, qa) == pytest.approx(0.0, abs=1e-9)
    # PSI (symmetrised KL) of a 0.5-sigma mean shift is ≈ 0.25.
    assert 0.15 < psi_from_quantiles(qa, qb) < 0.4
