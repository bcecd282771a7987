"""Timestamp arithmetic the kinds share: periods, spans, nearest-item joins, absence reasons.

Every function works on whole arrays of window bounds (np.searchsorted), never on one
timestamp at a time.
"""

from __future__ import annotations

import numpy as np


def stream_period(times: np.ndarray) -> float:
    """Median sample period of a timestamped stream (robust to a few gaps)."""
    if times.size < 2:
        return 0.0
    return float(np.median(np.diff(times)))


def sampled_span(times: np.ndarray) -> tuple[float, float]:
    """(first, end) of a sampled stream: the end includes the last sample's period."""
    return float(times[0]), float(times[-1]) + stream_period(times)


def median_rate(times: np.ndarray) -> float | None:
    """Items per second from the median period, or None for fewer than two items."""
    period = stream_period(times)
    return 1.0 / period if period > 0 else None


def nearest_index(times: np.ndarray, query: np.ndarray, tolerance: float) -> np.ndarray:
    """Index of the element of sorted `times` nearest each query, or -1 beyond `tolerance`.

    One searchsorted over all queries, then a choice between the two neighbours: the same result
    as pandas.merge_asof(direction="nearest", tolerance=...) without building DataFrames.
    """
    if times.size == 0:
        return np.full(query.shape, -1, dtype=np.int64)
    right = _searchsorted_left(times, query)
    left = right - 1
    np.minimum(right, times.size - 1, out=right)
    np.maximum(left, 0, out=left)
    # In-place arithmetic: at millions of windows the temporaries cost more than the search.
    d_left = times[left]
    np.subtract(query, d_left, out=d_left)
    np.abs(d_left, out=d_left)
    d_right = times[right]
    np.subtract(d_right, query, out=d_right)
    np.abs(d_right, out=d_right)
    np.copyto(left, right, where=d_right < d_left)
    np.minimum(d_left, d_right, out=d_left)
    left[d_left > tolerance] = -1
    return left


def _searchsorted_left(times: np.ndarray, query: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """np.searchsorted(times, query), faster for sorted queries (window centres always are).

    Each chunk of sorted queries is searched only within the slice of `times` it can land in:
    a short binary search over cache-resident data instead of one over the whole array.
    """
    if query.size < 4 * chunk or np.any(np.diff(query) < 0):
        return np.searchsorted(times, query, side="left")
    heads = query[::chunk]
    tails = query[np.minimum(np.arange(chunk - 1, query.size + chunk - 1, chunk), query.size - 1)]
    lo = np.searchsorted(times, heads, side="left")
    hi = np.searchsorted(times, tails, side="right")
    out = np.empty(query.size, dtype=np.int64)
    for k in range(heads.size):  # one pass per chunk of thousands of queries, not per query
        a, b = int(lo[k]), int(hi[k])
        out[k * chunk : (k + 1) * chunk] = a + np.searchsorted(
            times[a:b], query[k * chunk : (k + 1) * chunk]
        )
    return out


def slice_bounds(times: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row ranges [lo, hi) of sorted `times` inside each [a, b)."""
    return np.searchsorted(times, a, side="left"), np.searchsorted(times, b, side="left")


def absence_reason(
    centre_dev: np.ndarray, first: float, end: float, present: np.ndarray
) -> np.ndarray:
    """Why a stream is absent in each window: before its start, after its end, or a gap."""
    reason = np.where(
        centre_dev < first, "before_start", np.where(centre_dev >= end, "after_end", "gap")
    )
    return np.where(present, "", reason)
