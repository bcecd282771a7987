"""Class and subgroup balancing for training: per-sample weights and the before/after report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

METHODS = ("none", "class_weighted_loss", "weighted_sampling", "subgroup_upsampling")
# The names TrainConfig.balancing uses for the same methods.
ALIASES = {"class_weight": "class_weighted_loss", "subgroup_upsample": "subgroup_upsampling"}


def class_weights(
    labels: Sequence[str] | pd.Series, classes: Sequence[str] | None = None
) -> dict[str, float]:
    """Inverse-frequency weight per present class, scaled so the weighted mean over samples is 1.

    w_c = n / (K * n_c), the "balanced" heuristic of King & Zeng (2001); classes with no
    samples get no entry (a loss weight for them would be meaningless). Keys follow `classes`
    (the spec's order) when given, then any other value sorted.
    """
    counts = pd.Series(labels, dtype="string").dropna().value_counts()
    found = {str(c): int(n) for c, n in counts.items()}
    return weights_from_counts(found, sorted(found) if classes is None else classes)


def weights_from_counts(
    counts: Mapping[str, int], order: Sequence[str] | None = None
) -> dict[str, float]:
    """w_v = n / (K * n_v) for every value with a non-zero count; keys in `order` first (default:
    the order of `counts`, e.g. a manifest's spec-ordered label counts), then the rest sorted."""
    present = {v: int(c) for v, c in counts.items() if c}
    if not present:
        return {}
    n, k = float(sum(present.values())), float(len(present))
    first = list(counts) if order is None else list(order)
    keys = [c for c in first if c in present]
    keys += sorted(c for c in present if c not in keys)
    return {c: n / (k * present[c]) for c in keys}


def shares_before_after(
    counts: Mapping[str, int], weights: Mapping[str, float] | None, dimension: str
) -> pd.DataFrame:
    """The same before/after table as distribution_report, from counts (e.g. a manifest's)."""
    rows = []
    total = sum(counts.values())
    weighted = {v: c * (weights.get(v, 0.0) if weights else 1.0) for v, c in counts.items()}
    wsum = sum(weighted.values())
    for value, count in counts.items():
        rows.append(
            {
                "dimension": dimension,
                "value": value,
                "count": int(count),
                "share_before": count / total if total else np.nan,
                "share_after": weighted[value] / wsum if wsum else np.nan,
            }
        )
    return pd.DataFrame(
        rows, columns=["dimension", "value", "count", "share_before", "share_after"]
    )


def sample_weights(
    df: pd.DataFrame,
    method: str = "none",
    subgroup_cols: Sequence[str] = (),
    classes: Sequence[str] | None = None,
) -> np.ndarray:
    """Per-sample weights for `method`, mean 1 over the weighted samples.

    - none: all ones.
    - class_weighted_loss: each sample's class weight (what a weighted loss multiplies by).
    - weighted_sampling: the same inverse class frequency, meant as sampling probabilities
      (normalise and draw with replacement; every class is then seen equally often).
    - subgroup_upsampling: inverse frequency of the sample's subgroup (the combination of
      `subgroup_cols`), so each subgroup is drawn equally often.
    Unlabelled samples (boundary windows) get weight 0 under the class methods.
    """
    method = ALIASES.get(method, method)
    if method not in METHODS:
        raise ValueError(f"balancing method {method!r}: expected one of {list(METHODS)}")
    n = len(df)
    if method == "none" or n == 0:
        return np.ones(n, dtype=np.float64)
    if method in ("class_weighted_loss", "weighted_sampling"):
        if "label" not in df.columns:
            raise ValueError(f"balancing method {method!r} needs a 'label' column")
        weights = class_weights(df["label"], classes)
        labels = df["label"].astype("string")
        return labels.map(weights).astype("Float64").fillna(0.0).to_numpy(np.float64)
    missing = [c for c in subgroup_cols if c not in df.columns]
    if missing or not subgroup_cols:
        raise ValueError(
            f"subgroup_upsampling needs metadata columns {list(subgroup_cols)}; missing {missing}"
        )
    keys = df[list(subgroup_cols)].astype("string").fillna("<missing>")
    group = keys.agg("|".join, axis=1)
    counts = group.map(group.value_counts()).to_numpy(np.float64)
    k = float(group.nunique())
    return n / (k * counts)


def distribution_report(
    df: pd.DataFrame, weights: np.ndarray, subgroup_cols: Sequence[str] = ()
) -> pd.DataFrame:
    """Share of each class and each subgroup value before and after weighting.

    Columns: dimension ('label' or a metadata column), value, count, share_before,
    share_after (the share of total weight, i.e. the expected share under weighted
    sampling or in a weighted loss).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(df),):
        raise ValueError(f"weights: expected shape ({len(df)},), got {weights.shape}")
    total = weights.sum()
    rows = []
    for dim in ("label", *subgroup_cols):
        if dim not in df.columns:
            continue
        values = df[dim].astype("string").fillna("<missing>")
        frame = pd.DataFrame({"value": values.to_numpy(), "w": weights})
        grouped = frame.groupby("value", sort=True)["w"].agg(["size", "sum"])
        for value, g in grouped.iterrows():
            rows.append(
                {
                    "dimension": dim,
                    "value": value,
                    "count": int(g["size"]),
                    "share_before": g["size"] / len(df) if len(df) else np.nan,
                    "share_after": g["sum"] / total if total > 0 else np.nan,
                }
            )
    return pd.DataFrame(
        rows, columns=["dimension", "value", "count", "share_before", "share_after"]
    )
