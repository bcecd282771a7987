"""Drift of per-stream statistics against the champion's dataset summary (PSI or KS)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modalops.config.validate import ValidateConfig
from modalops.validate.result import CheckResult, severity_for
from modalops.validate.stats import QUANTILE_COLUMNS

_EPS = 1e-4  # floor on bin shares so an empty bin does not make PSI infinite


def _atoms(row: pd.Series) -> np.ndarray:
    """The summary's quantiles, read as an equally weighted sample of its distribution."""
    q = row[list(QUANTILE_COLUMNS)].to_numpy(dtype=float)
    return q[np.isfinite(q)]


def _cdf(quantiles: np.ndarray):
    """Right-continuous CDF rebuilt from evenly spaced quantiles, linear between distinct values.

    Tied quantiles (a constant or discrete statistic) become a jump at that value, so a
    constant statistic has F = 0 below it and 1 from it on, on both sides of a comparison.
    """
    p = np.linspace(0.0, 1.0, quantiles.size)
    values, last = np.unique(quantiles[::-1], return_index=True)
    p_at = p[::-1][last]  # the largest probability reached at each distinct value

    def f(x: np.ndarray) -> np.ndarray:
        out = np.interp(x, values, p_at)
        out[x < values[0]] = 0.0
        return out

    return f


def psi_from_quantiles(reference: np.ndarray, current: np.ndarray, n_bins: int = 10) -> float:
    """Population stability index over the reference's deciles (Yurdakul 2018, bins of equal
    reference mass), with both distributions read from their quantile summaries."""
    f_ref, f_cur = _cdf(reference), _cdf(current)
    inner = np.quantile(reference, np.linspace(0, 1, n_bins + 1)[1:-1])
    edges = np.concatenate([[-np.inf], np.unique(inner), [np.inf]])

    def shares(f) -> np.ndarray:
        cdf = f(edges)
        cdf[-1] = 1.0
        return np.clip(np.diff(cdf), _EPS, None)

    p, q = shares(f_ref), shares(f_cur)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_from_quantiles(reference: np.ndarray, current: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the CDFs rebuilt from the two quantile summaries."""
    grid = np.union1d(reference, current)
    return float(np.max(np.abs(_cdf(reference)(grid) - _cdf(current)(grid))))


def psi_from_shares(reference: np.ndarray, current: np.ndarray) -> float:
    p = np.clip(np.nan_to_num(reference), _EPS, None)
    q = np.clip(np.nan_to_num(current), _EPS, None)
    return float(np.sum((q - p) * np.log(q / p)))


def drift_checks(
    current: pd.DataFrame,
    reference: pd.DataFrame | None,
    cfg: ValidateConfig,
    statistics: list[str] | None = None,
) -> list[CheckResult]:
    """One check per statistic; an informational pass when there is no reference.

    `statistics` are summary statistic names (`<stream>__<stat>`, 'align_confidence',
    'label'); default `cfg.drift_statistics`, else every statistic `current` summarises
    except the presence rates (the gate passes `stats.default_drift_statistics(spec)`).
    """
    if statistics is None:
        statistics = cfg.drift_statistics
    if statistics is None:
        names = current["statistic"].astype(str) if len(current) else pd.Series(dtype=str)
        statistics = list(dict.fromkeys(n for n in names if not n.startswith("has__")))
    if reference is None or len(reference) == 0:
        return [
            CheckResult(
                "drift",
                "drift",
                "skipped",
                "a reference summary (champion's dataset)",
                "warn",
                True,
                "no champion model yet: drift against a reference was skipped",
            )
        ]
    checks = []
    metric = cfg.drift_metric
    for stat in statistics:
        name = f"drift_{stat}"
        sev = severity_for(name, "warn", cfg)
        expected = f"{metric} ≤ {cfg.drift_threshold:g}"
        cur = current[current["statistic"] == stat]
        ref = reference[reference["statistic"] == stat]
        if cur.empty or ref.empty:
            checks.append(
                CheckResult(name, "drift", "n/a", expected, sev, True, "statistic not summarised")
            )
            continue
        if stat == "label" or (cur["kind"] == "category").all():
            joined = ref.set_index("category")["mean"].to_frame("ref")
            joined = joined.join(cur.set_index("category")["mean"].rename("cur"), how="outer")
            p, q = joined["ref"].to_numpy(float), joined["cur"].to_numpy(float)
            value = (
                psi_from_shares(p, q)
                if metric == "psi"
                else float(np.nanmax(np.abs(np.cumsum(np.nan_to_num(p) - np.nan_to_num(q)))))
            )
            details = ", ".join(
                f"{k}: {a:.3f}→{b:.3f}" for k, a, b in zip(joined.index, p, q, strict=True)
            )
        else:
            a, b = _atoms(ref.iloc[0]), _atoms(cur.iloc[0])
            if a.size == 0 or b.size == 0:
                checks.append(CheckResult(name, "drift", "n/a", expected, sev, True, "no values"))
                continue
            value = psi_from_quantiles(a, b) if metric == "psi" else ks_from_quantiles(a, b)
            details = (
                f"median {np.median(a):.4g}→{np.median(b):.4g}, "
                f"mean {ref.iloc[0]['mean']:.4g}→{cur.iloc[0]['mean']:.4g}"
            )
        checks.append(
            CheckResult(
                name,
                "drift",
                f"{metric} {value:.3f}",
                expected,
                sev,
                bool(value <= cfg.drift_threshold),
                details,
            )
        )
    return checks
