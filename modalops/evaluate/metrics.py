"""Classification, calibration and selective-prediction metrics on plain numpy arrays.

Conventions: `y_true`/`y_pred` are integer class indices, `probs` is an (N, C) array whose rows
sum to 1, `logits` is (N, C) before the softmax. Macro averages run over the classes that occur
in the truth or the predictions (a class absent from both has no defined F1, so counting it as
0 would punish a slice for not containing it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd


def _as_labels(y: Sequence[int] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D array of class indices, got shape {arr.shape}")
    return arr.astype(np.int64)


def _as_probs(probs: np.ndarray, what: str = "probs") -> np.ndarray:
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what}: expected an (N, C) array, got shape {arr.shape}")
    return arr


def confusion(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(C, C) counts; rows are true classes, columns predicted classes."""
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} items but y_pred has {p.size}")
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(out, (t, p), 1)
    return out


def _prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(np.float64)
    pred_n = cm.sum(axis=0).astype(np.float64)
    true_n = cm.sum(axis=1).astype(np.float64)
    # 0/0 is reported as 0 (sklearn's zero_division=0), never NaN, so tables stay numeric.
    precision = np.divide(tp, pred_n, out=np.zeros_like(tp), where=pred_n > 0)
    recall = np.divide(tp, true_n, out=np.zeros_like(tp), where=true_n > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = (pred_n > 0) | (true_n > 0)
    return precision, recall, f1, present


def per_class_prf(
    y_true, y_pred, n_classes: int, labels: Sequence[str] | None = None
) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (one row per class, in index order)."""
    cm = confusion(y_true, y_pred, n_classes)
    precision, recall, f1, _ = _prf(cm)
    names = list(labels) if labels is not None else _default_labels(n_classes)
    return pd.DataFrame(
        {
            "label": names,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": cm.sum(axis=1),
        }
    )


def _default_labels(n_classes: int) -> list[str]:
    return [str(i) for i in range(n_classes)]


def macro_f1(y_true, y_pred, n_classes: int) -> float:
    """Unweighted mean F1 over the classes present in truth or predictions (NaN when empty)."""
    cm = confusion(y_true, y_pred, n_classes)
    _, _, f1, present = _prf(cm)
    return float(f1[present].mean()) if present.any() else float("nan")


def accuracy(y_true, y_pred, n_classes: int | None = None) -> float:
    """Share of exact matches (NaN when empty); `n_classes` is accepted for a uniform signature."""
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    return float((t == p).mean()) if t.size else float("nan")


def error_rate(y_true, y_pred, n_classes: int | None = None) -> float:
    return 1.0 - accuracy(y_true, y_pred)


# ---- calibration -----------------------------------------------------------------------------


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = _as_probs(logits, "logits") / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def probs_to_logits(probs: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Log-probabilities: softmax(log p / T) equals softmax(logits / T), so they serve as logits."""
    return np.log(np.clip(_as_probs(probs), eps, 1.0))


def nll(probs: np.ndarray, y_true, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the true class."""
    p = _as_probs(probs)
    t = _as_labels(y_true, "y_true")
    return float(-np.log(np.clip(p[np.arange(t.size), t], eps, 1.0)).mean())


def reliability_table(probs: np.ndarray, y_true, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width confidence bins: count, mean confidence and accuracy per bin."""
    p = _as_probs(probs)
    t = _as_labels(y_true, "y_true")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == t).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bins are (lo, hi]; confidence 0 cannot occur for a max over >= 1 class, so nothing is lost.
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = idx == b
        n = int(mask.sum())
        rows.append(
            {
                "bin_lo": edges[b],
                "bin_hi": edges[b + 1],
                "n": n,
                "confidence": float(conf[mask].mean()) if n else float("nan"),
                "accuracy": float(correct[mask].mean()) if n else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def ece(probs: np.ndarray, y_true, n_bins: int = 10) -> float:
    """Expected calibration error (Guo et al. 2017): sum over bins of n_b/N * |acc_b - conf_b|."""
    table = reliability_table(probs, y_true, n_bins)
    total = table["n"].sum()
    if total == 0:
        return float("nan")
    used = table[table["n"] > 0]
    return float((used["n"] / total * (used["accuracy"] - used["confidence"]).abs()).sum())


def fit_temperature(logits: np.ndarray, y, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature T minimising validation NLL of softmax(logits / T) (Guo et al. 2017)."""
    from scipy.optimize import minimize_scalar

    z = _as_probs(logits, "logits")
    t = _as_labels(y, "y")
    if t.size == 0:
        raise ValueError("fit_temperature: no samples to fit on")

    def objective(log_t: float) -> float:
        return nll(softmax(z, float(np.exp(log_t))), t)

    # Searching log T keeps the problem well scaled on both sides of T = 1.
    res = minimize_scalar(
        objective, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded"
    )
    return float(np.exp(res.x))


# ---- selective prediction (abstention) ---------------------------------------------------------


def coverage(probs: np.ndarray, threshold: float) -> float:
    """Share of samples whose top probability reaches `threshold` (the rest abstain)."""
    conf = _as_probs(probs).max(axis=1)
    return float((conf >= threshold).mean()) if conf.size else float("nan")


def selective_risk(probs: np.ndarray, y_true, threshold: float) -> float:
    """Error rate among the samples that are not abstained on (NaN when all abstain)."""
    p = _as_probs(probs)
    t = _as_labels(y_true, "y_true")
    keep = p.max(axis=1) >= threshold
    if not keep.any():
        return float("nan")
    return float((p[keep].argmax(axis=1) != t[keep]).mean())


def coverage_risk_curve(probs: np.ndarray, y_true) -> pd.DataFrame:
    """Coverage and selective risk at every distinct confidence, most to least confident."""
    p = _as_probs(probs)
    t = _as_labels(y_true, "y_true")
    conf = p.max(axis=1)
    wrong = (p.argmax(axis=1) != t).astype(np.float64)
    order = np.argsort(-conf, kind="stable")
    conf_sorted, wrong_sorted = conf[order], wrong[order]
    n_kept = np.arange(1, conf.size + 1)
    risk = np.cumsum(wrong_sorted) / n_kept
    # Ties share one threshold: keep the last position of each run of equal confidences.
    last = np.r_[conf_sorted[1:] != conf_sorted[:-1], True] if conf.size else np.array([], bool)
    return pd.DataFrame(
        {
            "threshold": conf_sorted[last],
            "coverage": n_kept[last] / max(conf.size, 1),
            "risk": risk[last],
        }
    )


def choose_threshold(
    probs: np.ndarray,
    y_true,
    target_precision: float | None = None,
    max_risk: float | None = None,
) -> float:
    """The lowest confidence threshold (largest coverage) whose selective precision meets the target.

    Give exactly one of `target_precision` (accuracy among answered samples) or `max_risk`
    (= 1 - precision). When no threshold meets the target, returns a value above every observed
    confidence, i.e. abstain on everything seen: failing safe rather than silently answering.
    """
    if (target_precision is None) == (max_risk is None):
        raise ValueError("choose_threshold: give exactly one of target_precision or max_risk")
    limit = (1.0 - target_precision) if target_precision is not None else float(max_risk)
    curve = coverage_risk_curve(probs, y_true)
    ok = curve[curve["risk"] <= limit + 1e-12]
    if ok.empty:
        top = float(_as_probs(probs).max()) if len(curve) else 1.0
        return float(np.nextafter(top, np.inf))
    return float(ok["threshold"].min())


# ---- uncertainty -------------------------------------------------------------------------------


def bootstrap_ci(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    y_true,
    y_pred_or_probs,
    n_boot: int = 1000,
    seed: int = 0,
    groups: Sequence | np.ndarray | None = None,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of `metric_fn(y_true, y_pred_or_probs)`.

    With `groups` (e.g. session ids) whole groups are resampled: windows of one session are
    correlated, so resampling windows independently would give intervals that are too narrow.
    """
    t = np.asarray(y_true)
    x = np.asarray(y_pred_or_probs)
    if len(t) != len(x):
        raise ValueError(f"bootstrap_ci: y_true has {len(t)} items but predictions have {len(x)}")
    if len(t) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    if groups is None:
        members = [np.array([i]) for i in range(len(t))]
    else:
        g = np.asarray(groups)
        if len(g) != len(t):
            raise ValueError(f"bootstrap_ci: groups has {len(g)} items, y_true has {len(t)}")
        _, inverse = np.unique(g, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0, True])
        members = [order[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]
    n_groups = len(members)
    values = np.empty(n_boot, dtype=np.float64)
    for b in range(n_boot):
        pick = rng.integers(0, n_groups, size=n_groups)
        idx = np.concatenate([members[i] for i in pick])
        values[b] = metric_fn(t[idx], x[idx])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
