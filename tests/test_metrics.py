"""Metrics against hand-computed values on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest

from modalops.evaluate import metrics

Y_TRUE = [0, 0, 1, 1, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0]


def test_confusion_and_per_class_by_hand():
    cm = metrics.confusion(Y_TRUE, Y_PRED, 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    table = metrics.per_class_prf(Y_TRUE, Y_PRED, 4, ["idle", "walk", "run", "jump"])
    assert list(table["label"]) == ["idle", "walk", "run", "jump"]
    # without names, classes are their indices (metrics know nothing of any dataset)
    assert list(metrics.per_class_prf(Y_TRUE, Y_PRED, 4)["label"]) == ["0", "1", "2", "3"]
    np.testing.assert_allclose(table["precision"], [0.5, 2 / 3, 1.0, 0.0])
    np.testing.assert_allclose(table["recall"], [0.5, 1.0, 0.5, 0.0])
    np.testing.assert_allclose(table["f1"], [0.5, 0.8, 2 / 3, 0.0])
    assert table["support"].tolist() == [2, 2, 2, 0]


def test_macro_f1_skips_absent_classes_and_accuracy():
    # class 3 occurs in neither truth nor predictions: (0.5 + 0.8 + 2/3) / 3
    assert metrics.macro_f1(Y_TRUE, Y_PRED, 4) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert metrics.accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    # a class only predicted (never true) counts with F1 0
    assert metrics.macro_f1([0, 0], [0, 3], 4) == pytest.approx((2 / 3 + 0.0) / 2)
    with pytest.raises(ValueError, match="y_pred has 1"):
        metrics.confusion([0, 1], [0], 4)


def test_ece_known_case():
    # 4 samples at confidence 0.9 with 3 right; 2 at 0.6 with 1 right:
    # ECE = 4/6 * |0.75 - 0.9| + 2/6 * |0.5 - 0.6| = 0.8 / 6
    def row(conf, cls):
        p = np.full(4, (1 - conf) / 3)
        p[cls] = conf
        return p

    probs = np.stack([row(0.9, 0), row(0.9, 1), row(0.9, 2), row(0.9, 0), row(0.6, 1), row(0.6, 2)])
    y = [0, 1, 2, 3, 1, 0]
    assert metrics.ece(probs, y, n_bins=10) == pytest.approx(0.8 / 6)
    table = metrics.reliability_table(probs, y, 10)
    assert table["n"].sum() == 6 and table.loc[8, "n"] == 4 and table.loc[5, "n"] == 2


def test_bootstrap_ci_by_session_is_wider_than_by_window():
    # two sessions of 50 windows: one all right, one all wrong
    y = np.zeros(100, dtype=int)
    pred = np.r_[np.zeros(50, dtype=int), np.ones(50, dtype=int)]
    groups = np.r_[["a"] * 50, ["b"] * 50]
    # resampling 2 sessions gives accuracy 0, 0.5 or 1 with chances 1/4, 1/2, 1/4
    lo, hi = metrics.bootstrap_ci(metrics.accuracy, y, pred, n_boot=2000, seed=1, groups=groups)
    assert (lo, hi) == (0.0, 1.0)
    lo_w, hi_w = metrics.bootstrap_ci(metrics.accuracy, y, pred, n_boot=2000, seed=1)
    # binomial: 0.5 +- 1.96 * sqrt(0.25 / 100) = 0.5 +- 0.098
    assert lo_w == pytest.approx(0.402, abs=0.03) and hi_w == pytest.approx(0.598, abs=0.03)
    # perfect predictions have a degenerate interval
    assert metrics.bootstrap_ci(metrics.accuracy, y, y, n_boot=50) == (1.0, 1.0)


def test_temperature_fixes_overconfidence():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2000, 4))
    p = metrics.softmax(base)
    y = np.array([rng.choice(4, p=row) for row in p])  # labels drawn from the true probabilities
    overconfident = base * 4.0
    t = metrics.fit_temperature(overconfident, y)
    assert t == pytest.approx(4.0, rel=0.15)
    before = metrics.nll(metrics.softmax(overconfident), y)
    after = metrics.nll(metrics.softmax(overconfident, t), y)
    assert after < before - 0.2
    assert metrics.ece(metrics.softmax(overconfident, t), y) < metrics.ece(
        metrics.softmax(overconfident), y
    )


def _conf_rows(confs, classes):
    rows = []
    for c, k in zip(confs, classes, strict=True):
        r = np.full(4, (1 - c) / 3)
        r[k] = c
        rows.append(r)
    return np.stack(rows)


def test_choose_threshold_and_coverage_by_hand():
    probs = _conf_rows([0.95, 0.9, 0.8, 0.7, 0.6], [0, 1, 2, 3, 0])
    y = [0, 1, 0, 3, 1]  # wrong at 0.8 and 0.6
    # risk at thresholds 0.95, 0.9, 0.8, 0.7, 0.6: 0, 0, 1/3, 1/4, 2/5
    assert metrics.choose_threshold(probs, y, target_precision=0.75) == pytest.approx(0.7)
    assert metrics.choose_threshold(probs, y, max_risk=0.2) == pytest.approx(0.9)
    assert metrics.coverage(probs, 0.7) == pytest.approx(0.8)
    assert metrics.selective_risk(probs, y, 0.7) == pytest.approx(0.25)
    curve = metrics.coverage_risk_curve(probs, y)
    np.testing.assert_allclose(curve["risk"], [0, 0, 1 / 3, 1 / 4, 2 / 5])
    # an unreachable target abstains on everything
    t = metrics.choose_threshold(probs, [1, 2, 3, 0, 1], target_precision=0.99)
    assert metrics.coverage(probs, t) == 0.0
    with pytest.raises(ValueError, match="exactly one"):
        metrics.choose_threshold(probs, y)
