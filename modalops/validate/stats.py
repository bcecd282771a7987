"""Per-window statistics of the aligned-sample table: each stream's kind decodes its payloads into
numbers GE can check; plus the dataset-level columns and the summary kept for drift."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modalops.dataset.columns import payload_column, presence_column, stat_column
from modalops.kinds.payloads import is_absent

QUANTILES = np.linspace(0.0, 1.0, 51)
QUANTILE_COLUMNS = tuple(f"q{round(p * 100):03d}" for p in QUANTILES)
DATASET = "dataset"  # the `stream` of summary rows not about one stream (align_confidence, ...)


def _column(samples: pd.DataFrame, name: str, default: object = None) -> pd.Series:
    if name in samples.columns:
        return samples[name]
    return pd.Series([default] * len(samples), index=samples.index, dtype=object)


def window_length(samples: pd.DataFrame) -> float:
    """The window length of the aligned samples (median t_end - t_start; NaN when unknown)."""
    if not {"t_start", "t_end"} <= set(samples.columns) or not len(samples):
        return float("nan")
    t0 = pd.to_numeric(samples["t_start"], errors="coerce").to_numpy(float)
    t1 = pd.to_numeric(samples["t_end"], errors="coerce").to_numpy(float)
    d = t1 - t0
    d = d[np.isfinite(d)]
    return float(np.median(d)) if d.size else float("nan")


def known_streams(spec, names: list[str], setting: str) -> list[str]:
    """`names` from the config field `setting`; ValueError when the spec lacks one of them."""
    unknown = [s for s in names if s not in spec.streams]
    if unknown:
        raise ValueError(
            f"validation.{setting}: unknown {unknown}; the dataset spec {spec.name!r} declares "
            f"streams {spec.stream_names}"
        )
    return list(names)


def presence(samples: pd.DataFrame, stream: str) -> np.ndarray:
    """The presence mask of `stream`: its has__ column, else whether its payload is there."""
    col = presence_column(stream)
    if col in samples.columns:
        return samples[col].fillna(False).astype(bool).to_numpy()
    return ~_column(samples, payload_column(stream)).map(is_absent).to_numpy(bool)


def stream_payloads(samples: pd.DataFrame, stream: str, mask: np.ndarray) -> list:
    """The payloads of `stream`, None where the window does not carry it."""
    values = _column(samples, payload_column(stream)).to_list()
    return [v if mask[i] else None for i, v in enumerate(values)]


def sample_stats(samples: pd.DataFrame, spec, window_s: float | None = None) -> pd.DataFrame:
    """One row of decoded statistics per sample, keyed by session_id / window_index.

    Per stream, its kind's `window_stats` as columns `<stream>__<stat>`; they are NaN / NA where
    the sample does not carry the stream (presence False or empty payload), so a missing stream
    is never mistaken for a broken one. `window_s` defaults to the samples' own window length.
    """
    if window_s is None:
        window_s = window_length(samples)
    out = pd.DataFrame(
        {
            "session_id": samples["session_id"].astype("string").to_numpy(),
            "window_index": samples["window_index"].astype("int64").to_numpy(),
        }
    )
    t_start = pd.to_numeric(_column(samples, "t_start", np.nan), errors="coerce").to_numpy(float)
    t_end = pd.to_numeric(_column(samples, "t_end", np.nan), errors="coerce").to_numpy(float)
    out["window_s"] = t_end - t_start
    blocks = []
    for stream in spec.stream_names:
        kind = spec.kind_of(stream)
        mask = presence(samples, stream)
        out[presence_column(stream)] = mask
        stats = kind.checks.window_stats(
            stream_payloads(samples, stream, mask),
            spec.params(stream),
            spec.checks(stream),
            float(window_s) if np.isfinite(window_s) else 0.0,
        )
        stats.index = out.index
        blocks.append(stats.rename(columns=lambda c, s=stream: stat_column(s, c)))
    out = pd.concat([out, *blocks], axis=1)
    out["label"] = _column(samples, "label").astype("string").to_numpy()
    out["boundary"] = _column(samples, "boundary", False).fillna(False).astype(bool).to_numpy()
    out["label_overlap"] = pd.to_numeric(
        _column(samples, "label_overlap", np.nan), errors="coerce"
    ).to_numpy(float)
    out["align_confidence"] = pd.to_numeric(
        _column(samples, "align_confidence", np.nan), errors="coerce"
    ).to_numpy(float)
    for col in spec.meta_columns:
        out[col] = _column(samples, col).astype("string").to_numpy()
    return add_derived(out, spec)


def add_derived(stats: pd.DataFrame, spec) -> pd.DataFrame:
    """Columns computed from other statistics (vectorised); also used on synthetic tables."""
    cols = [presence_column(s) for s in spec.stream_names]
    stats["n_present"] = stats[cols].to_numpy(bool).sum(axis=1)
    stats["unlabelled"] = stats["label"].isna().to_numpy() & ~stats["boundary"].to_numpy(bool)
    return stats


def _numeric_row(stream: str, name: str, values: np.ndarray) -> dict:
    values = values[np.isfinite(values)]
    row = {"stream": stream, "statistic": name, "category": "", "kind": "numeric"}
    row["n"] = int(values.size)
    row["mean"] = float(values.mean()) if values.size else np.nan
    row["std"] = float(values.std()) if values.size else np.nan
    qs = np.quantile(values, QUANTILES) if values.size else np.full(QUANTILES.size, np.nan)
    row.update(dict(zip(QUANTILE_COLUMNS, qs.tolist(), strict=True)))
    return row


def summarize_for_reference(stats: pd.DataFrame, spec) -> pd.DataFrame:
    """Summary of a dataset version, the reference its successors are compared to.

    One row per (stream, statistic): every numeric per-window statistic of every stream (named
    `<stream>__<stat>`), align_confidence and n_present (stream 'dataset'), with n, mean, std and
    51 quantiles (q000 … q100, every 2%), enough to rebuild an approximate distribution for
    PSI / KS. Category rows carry their share in `mean`: statistic 'label' (one per declared
    class) and `has__<stream>` (the presence rate, category 'present').
    """
    rows = []
    for stream in spec.stream_names:
        prefix = stat_column(stream, "")
        for name in stats.columns:
            if not name.startswith(prefix) or stats[name].dtype != np.float64:
                continue
            rows.append(_numeric_row(stream, name, stats[name].to_numpy(float)))
    for name in ("align_confidence", "n_present"):
        if name in stats.columns:
            values = pd.to_numeric(stats[name], errors="coerce").to_numpy(float)
            rows.append(_numeric_row(DATASET, name, values))
    labels = stats["label"].dropna() if "label" in stats.columns else pd.Series(dtype=str)
    for name in spec.labels.classes:
        share = float((labels == name).mean()) if len(labels) else np.nan
        rows.append({"stream": "label", "statistic": "label", "category": name,
                     "kind": "category", "n": int(len(labels)), "mean": share})  # fmt: skip
    for stream in spec.stream_names:
        col = presence_column(stream)
        if col in stats.columns:
            rate = float(stats[col].astype(bool).mean()) if len(stats) else np.nan
            rows.append({"stream": stream, "statistic": col, "category": "present",
                         "kind": "category", "n": int(len(stats)), "mean": rate})  # fmt: skip
    summary = pd.DataFrame(rows)
    for col in ("std", *QUANTILE_COLUMNS):
        if col not in summary.columns:
            summary[col] = np.nan
    return summary[
        ["stream", "statistic", "category", "kind", "n", "mean", "std", *QUANTILE_COLUMNS]
    ]


def default_drift_statistics(spec) -> list[str]:
    """Each stream's kind's DRIFT_STATS as `<stream>__<stat>`, then align_confidence and label."""
    names = [
        stat_column(s, stat)
        for s in spec.stream_names
        for stat in spec.kind_of(s).checks.DRIFT_STATS
    ]
    return [*names, "align_confidence", "label"]
