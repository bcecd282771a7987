"""Verification rules: which predicted windows go to review, each with a readable reason."""

from __future__ import annotations

import pandas as pd
import pytest

from modalops.config import load_config
from modalops.config.infer import InferenceConfig, VerificationConfig
from modalops.config.loading import ConfigError
from modalops.dataset.spec import parse_spec
from modalops.infer.verify import ACCEPT, REVIEW, check_rules, route_windows
from modalops.pipeline_plan import check_config_against_spec
from modalops.testing.recordings import synthetic_spec

SPEC = parse_spec(synthetic_spec(), "synthetic")
CLASSES = SPEC.labels.classes


def _frame(rows):
    base = {f"has__{s}": True for s in SPEC.stream_names}
    return pd.DataFrame([{**base, "plant": "p1", "abstained": False, **r} for r in rows])


def test_each_rule_routes_with_its_reason():
    a, b = CLASSES[0], CLASSES[1]
    required = SPEC.required_streams[0]
    optional = next(s for s in SPEC.stream_names if s not in SPEC.required_streams)
    pred = _frame([
        {"label": a, "probability": 0.95},                                 # accepted
        {"label": a, "probability": 0.40, "abstained": True},              # abstained
        {"label": a, "probability": 0.95, f"has__{required}": False},      # missing required
        {"label": a, "probability": 0.95, "plant": "p2"},                  # weak slice
        {"label": b, "probability": 0.80},                                 # b needs 0.9
        {"label": b, "probability": 0.95, f"has__{optional}": False},      # b needs optional
    ])  # fmt: skip
    rules = VerificationConfig(
        min_probability={b: 0.9}, requires_streams={b: [optional]}, least_confident_share=0
    )
    out = route_windows(pred, SPEC, rules, threshold=0.5, flagged_slices=["plant=p2"])
    assert list(out["route"]) == [ACCEPT] + [REVIEW] * 5
    reasons = list(out["reasons"])
    assert reasons[0] == ""
    assert reasons[1] == "abstained: probability 0.40 < threshold 0.50"
    assert reasons[2] == f"missing {required}"
    assert reasons[3] == "weak slice plant=p2"
    assert reasons[4] == f"{b} needs probability >= 0.90"
    assert reasons[5] == f"{b} needs {optional}, which is missing"
    # every rule can be switched off
    off = VerificationConfig(
        abstained=False, missing_streams="none", weak_slices=False, least_confident_share=0
    )
    quiet = route_windows(pred, SPEC, off, 0.5, ["plant=p2"])
    assert set(quiet["route"]) == {ACCEPT}
    # "any": an optional stream's absence routes too
    anyrule = route_windows(
        pred, SPEC, VerificationConfig(missing_streams="any", least_confident_share=0), 0.5
    )
    assert anyrule["route"].iloc[5] == REVIEW and f"missing {optional}" in anyrule["reasons"][5]


def test_rules_naming_unknown_classes_or_streams_are_refused():
    with pytest.raises(ValueError, match="'nope' is not a class"):
        check_rules(VerificationConfig(min_probability={"nope": 0.5}), SPEC)
    with pytest.raises(ValueError, match="'lidar' is not a stream"):
        check_rules(VerificationConfig(requires_streams={CLASSES[0]: ["lidar"]}), SPEC)
    cfg = load_config([], ["inference.verification.min_probability={nope: 0.5}"])
    with pytest.raises(ConfigError, match="inference.verification.min_probability"):
        check_config_against_spec(cfg, SPEC)


def test_config_values_are_checked():
    with pytest.raises(ValueError, match="probabilities must lie in"):
        VerificationConfig(min_probability={"a": 1.5})
    with pytest.raises(ValueError, match="is not one of"):
        InferenceConfig(sessions="newest")
    assert InferenceConfig(sessions=["s1", "s2"]).sessions == ["s1", "s2"]


def test_the_least_confident_share_goes_to_review_whatever_the_threshold():
    """A confident, calibrated model abstains on nothing; a reviewer's budget still sees its
    most doubtful answers."""
    probs = [0.99, 0.62, 0.97, 0.71, 0.95, 0.98, 0.93, 0.96, 0.94, 0.92]
    pred = _frame([{"label": CLASSES[0], "probability": p} for p in probs])
    rules = VerificationConfig(least_confident_share=0.2)
    out = route_windows(pred, SPEC, rules, threshold=0.5)
    assert list(out.index[out["route"] == REVIEW]) == [1, 3]  # the two lowest of ten
    assert out["reasons"][1] == "least confident 20% of the batch (probability <= 0.71)"
    assert set(route_windows(pred, SPEC, VerificationConfig(least_confident_share=0), 0.5)[
        "route"]) == {ACCEPT}  # fmt: skip


def test_an_abstention_for_input_issues_routes_with_the_models_own_reason():
    """The served model abstains on input its kind checks reject, whatever its probability:
    the review reason says so (not "probability < threshold", which a 0.99 row is not)."""
    a = CLASSES[0]
    pred = _frame([
        {"label": a, "probability": 0.99, "abstained": True, "abstain_reason": "input issues",
         "input_issues": "s: s_max = 1e+06 (expected s__max in [-inf, 25.7])"},
        {"label": a, "probability": 0.40, "abstained": True,
         "abstain_reason": "probability 0.40 < threshold 0.50", "input_issues": ""},
    ])  # fmt: skip
    out = route_windows(pred, SPEC, VerificationConfig(least_confident_share=0), 0.5)
    assert list(out["reasons"]) == [
        "abstained: input issues (s: s_max = 1e+06 (expected s__max in [-inf, 25.7]))",
        "abstained: probability 0.40 < threshold 0.50",
    ]
