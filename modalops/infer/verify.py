"""Verification: rules that decide which predicted windows a person reviews.

Every rule adds a reason a reviewer can read; a window with any reason goes to review, the rest
are accepted. The rules come from config (`inference.verification`) and from the model itself:
its abstention threshold and the slices its evaluation report flagged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from modalops.config.infer import VerificationConfig
from modalops.dataset import columns
from modalops.dataset.spec import DatasetSpec

REVIEW, ACCEPT = "review", "accept"


def check_rules(rules: VerificationConfig, spec: DatasetSpec) -> None:
    """Rules must name the spec's classes and streams (a typo would silently never fire)."""
    classes, streams = set(spec.labels.classes), set(spec.streams)
    problems = [
        f"verification.{key}: {name!r} is not a class of dataset {spec.name!r}"
        for key in ("min_probability", "requires_streams")
        for name in getattr(rules, key)
        if name not in classes
    ]
    problems += [
        f"verification.requires_streams.{cls}: {s!r} is not a stream of dataset {spec.name!r}"
        for cls, names in rules.requires_streams.items()
        for s in names
        if s not in streams
    ]
    if problems:
        raise ValueError("; ".join(problems))


def route_windows(
    predictions: pd.DataFrame,
    spec: DatasetSpec,
    rules: VerificationConfig,
    threshold: float,
    flagged_slices: Sequence[str] = (),
) -> pd.DataFrame:
    """`predictions` with `route` (review | accept) and `reasons` ("; "-joined) columns added.

    `predictions` has label, probability, abstained, has__<stream> and the metadata columns.
    `flagged_slices` are "column=value" names from the model's evaluation report.
    """
    check_rules(rules, spec)
    n = len(predictions)
    reasons: list[list[str]] = [[] for _ in range(n)]

    def add(mask: np.ndarray, text) -> None:
        for i in np.flatnonzero(mask):
            reasons[i].append(text(i) if callable(text) else text)

    prob = predictions["probability"].to_numpy(np.float64)
    label = predictions["label"].astype(str).to_numpy()
    if rules.abstained:
        why = predictions.get("abstain_reason", pd.Series([""] * n)).fillna("").astype(str)
        issues = predictions.get("input_issues", pd.Series([""] * n)).fillna("").astype(str)

        def abstained(i: int) -> str:
            # the model's own reason (its input failed a check, or a low probability)
            if why.iat[i]:
                return f"abstained: {why.iat[i]}" + (f" ({issues.iat[i]})" if issues.iat[i] else "")
            return f"abstained: probability {prob[i]:.2f} < threshold {threshold:.2f}"

        add(predictions["abstained"].to_numpy(bool), abstained)
    k = int(np.ceil(rules.least_confident_share * n)) if n else 0
    if k:
        order = np.argsort(prob, kind="stable")[:k]
        doubtful = np.zeros(n, bool)
        doubtful[order] = True
        cut = float(prob[order].max())
        share = rules.least_confident_share
        add(doubtful, f"least confident {100 * share:g}% of the batch (probability <= {cut:.2f})")
    checked = {"required": spec.required_streams, "any": spec.stream_names, "none": []}
    for stream in checked[rules.missing_streams]:
        add(~predictions[columns.presence_column(stream)].to_numpy(bool), f"missing {stream}")
    if rules.weak_slices:
        for name in flagged_slices:
            col, _, value = name.partition("=")
            if col in predictions.columns:
                hit = predictions[col].astype("string").fillna("").to_numpy() == value
                add(hit, f"weak slice {name}")
    for cls, need in rules.min_probability.items():
        add((label == cls) & (prob < need), f"{cls} needs probability >= {need:.2f}")
    for cls, streams in rules.requires_streams.items():
        for stream in streams:
            absent = ~predictions[columns.presence_column(stream)].to_numpy(bool)
            add((label == cls) & absent, f"{cls} needs {stream}, which is missing")
    out = predictions.copy()
    out["reasons"] = ["; ".join(r) for r in reasons]
    out["route"] = [REVIEW if r else ACCEPT for r in reasons]
    return out
