"""Balancing: class weights, per-sample weights for each method, and the before/after report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modalops.train.balancing import (
    class_weights,
    distribution_report,
    sample_weights,
    weights_from_counts,
)

CLASSES = ["normal", "proximity", "fault", "near_miss"]


@pytest.fixture
def frame() -> pd.DataFrame:
    labels = ["normal"] * 60 + ["proximity"] * 20 + ["fault"] * 15 + ["near_miss"] * 5
    sites = ["a"] * 90 + ["b"] * 10
    lighting = (["day", "night"] * 50)[:100]
    return pd.DataFrame({"label": labels, "site": sites, "lighting": lighting})


def test_class_weights_inverse_frequency(frame):
    w = class_weights(frame["label"], CLASSES)
    assert list(w) == CLASSES  # the spec's order, not frequency order
    assert list(class_weights(frame["label"])) == sorted(CLASSES)  # no order given: sorted
    assert w["near_miss"] == pytest.approx(100 / (4 * 5))
    counts = frame["label"].value_counts()
    assert sum(w[c] * counts[c] for c in w) == pytest.approx(100)  # mean weight 1


@pytest.mark.parametrize("method", ["class_weighted_loss", "weighted_sampling"])
def test_class_methods_equalise_classes(frame, method):
    weights = sample_weights(frame, method)
    report = distribution_report(frame, weights, ["site", "lighting"])
    labels = report[report["dimension"] == "label"].set_index("value")
    assert labels.loc["near_miss", "share_before"] == pytest.approx(0.05)
    assert np.allclose(labels["share_after"], 0.25)


def test_subgroup_upsampling_equalises_subgroups(frame):
    weights = sample_weights(frame, "subgroup_upsampling", ["site"])
    report = distribution_report(frame, weights, ["site"])
    sites = report[report["dimension"] == "site"].set_index("value")
    assert sites.loc["b", "share_before"] == pytest.approx(0.1)
    assert sites.loc["b", "share_after"] == pytest.approx(0.5)
    assert weights.mean() == pytest.approx(1.0)


def test_none_and_unlabelled_and_errors(frame):
    assert np.array_equal(sample_weights(frame, "none"), np.ones(len(frame)))
    df = frame.copy()
    df.loc[0, "label"] = None  # a boundary window
    w = sample_weights(df, "class_weighted_loss")
    assert w[0] == 0.0 and (w[1:] > 0).all()
    with pytest.raises(ValueError, match="balancing method 'oversample'"):
        sample_weights(frame, "oversample")
    with pytest.raises(ValueError, match="missing \\['station'\\]"):
        sample_weights(frame, "subgroup_upsampling", ["station"])
    with pytest.raises(ValueError, match="weights: expected shape"):
        distribution_report(frame, np.ones(3))


def test_weights_from_counts_keeps_the_counts_order():
    counts = {"rest": 10, "reach": 0, "grasp": 30}
    w = weights_from_counts(counts)
    assert list(w) == ["rest", "grasp"]  # manifest counts come in spec order; empty classes drop
    assert w["rest"] == pytest.approx(40 / (2 * 10))
    assert list(weights_from_counts(counts, ["grasp", "rest"])) == ["grasp", "rest"]


def test_train_config_names_are_accepted(frame):
    assert np.array_equal(
        sample_weights(frame, "class_weight"), sample_weights(frame, "class_weighted_loss")
    )
    assert np.array_equal(
        sample_weights(frame, "subgroup_upsample", ["site"]),
        sample_weights(frame, "subgroup_upsampling", ["site"]),
    )
