"""Drift checks: PSI / KS of per-modality summaries against a reference dataset summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modalops import schema
from modalops.config.validate import ValidateConfig
from modalops.validation import drift_checks, summarize_for_reference
from modalops.validation.drift import ks_from_quantiles, psi_from_quantiles
from modalops.validation.stats import QUANTILE_COLUMNS


def synthetic_stats(n: int, seed: int, brightness_shift: float = 0.0, labels=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "brightness": np.clip(rng.normal(0.45 + brightness_shift, 0.08, n), 0, 1),
            "blur": rng.lognormal(6, 0.3, n),
            "audio_rms": rng.lognormal(-2.5, 0.2, n),
            "audio_clip_fraction": np.zeros(n),  # constant: must not produce NaN or inf
            "vib_std": rng.lognormal(0, 0.2, n),
            "vib_nan_fraction": np.zeros(n),
            "text_len": rng.integers(0, 40, n).astype(float),
            "align_confidence": rng.uniform(5, 20, n),
            "label": rng.choice(list(schema.LABELS), n, p=labels or [0.55, 0.15, 0.15, 0.15]),
        }
    )
    for m in schema.MODALITIES:
        df[schema.PRESENCE_COLUMNS[m]] = True
    return df


def test_summary_has_quantiles_and_class_shares():
    summary = summarize_for_reference(synthetic_stats(2000, 0))
    row = summary[summary["statistic"] == "brightness"].iloc[0]
    assert row["modality"] == "camera" and row["n"] == 2000
    qs = row[list(QUANTILE_COLUMNS)].to_numpy(float)
    assert np.all(np.diff(qs) >= 0) and qs[25] == pytest.approx(0.45, abs=0.01)
    labels = summary[summary["statistic"] == "label"].set_index("category")["mean"]
    assert labels.sum() == pytest.approx(1.0) and labels["normal"] == pytest.approx(0.55, abs=0.03)


def test_no_reference_skips_with_a_passing_note():
    checks = drift_checks(summarize_for_reference(synthetic_stats(100, 0)), None, ValidateConfig())
    assert len(checks) == 1 and checks[0].passed and checks[0].observed == "skipped"
    assert "no champion" in checks[0].details


@pytest.mark.parametrize("metric,threshold", [("psi", 0.25), ("ks", 0.2)])
def test_same_distribution_passes_and_shift_fails(metric, threshold):
    cfg = ValidateConfig(drift_metric=metric, drift_threshold=threshold)
    ref = summarize_for_reference(synthetic_stats(3000, 1))
    same = summarize_for_reference(synthetic_stats(3000, 2))
    shifted = summarize_for_reference(
        synthetic_stats(3000, 3, brightness_shift=0.15, labels=[0.1, 0.3, 0.3, 0.3])
    )
    ok = {c.check: c for c in drift_checks(same, ref, cfg)}
    assert all(c.passed for c in ok.values()), [c for c in ok.values() if not c.passed]
    bad = {c.check: c for c in drift_checks(shifted, ref, cfg)}
    assert not bad["drift_brightness"].passed and not bad["drift_label"].passed
    assert bad["drift_blur"].passed and bad["drift_audio_clip_fraction"].passed
    assert bad["drift_brightness"].severity == "warn"  # drift warns unless configured
    cfg_fail = ValidateConfig(drift_metric=metric, severity={"drift_*": "fail"})
    assert {c.severity for c in drift_checks(shifted, ref, cfg_fail)} == {"fail"}


def test_psi_and_ks_agree_with_direct_estimates():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 20000), rng.normal(0.5, 1, 20000)
    qa, qb = np.quantile(a, np.linspace(0, 1, 51)), np.quantile(b, np.linspace(0, 1, 51))
    # True KS between N(0,1) and N(0.5,1) is 2*Phi(0.25)-1 ≈ 0.197.
    assert ks_from_quantiles(qa, qb) == pytest.approx(0.197, abs=0.04)
    assert psi_from_quantiles(qa, qa) == pytest.approx(0.0, abs=1e-9)
    # PSI (symmetrised KL) of a 0.5-sigma mean shift is ≈ 0.25.
    assert 0.15 < psi_from_quantiles(qa, qb) < 0.4
