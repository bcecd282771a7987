"""Windowing: cut the reference timeline into windows and find each stream's slice, vectorized.

Every function here works on whole arrays of window bounds (np.searchsorted), never on one
timestamp at a time; only the payload serialisation touches windows one by one.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from modalops import schema
from modalops.raw_layout import encode_wav


def window_bounds(
    ref_start: float, ref_end: float, window_s: float, hop_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Window starts and ends on the reference clock; no window reaches past `ref_end`."""
    span = ref_end - ref_start - window_s
    if span < -1e-9:
        return np.empty(0), np.empty(0)
    n = int(np.floor(span / hop_s + 1e-9)) + 1
    starts = ref_start + hop_s * np.arange(n, dtype=np.float64)
    return starts, starts + window_s


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


def label_windows(
    starts: np.ndarray, ends: np.ndarray, labels: pd.DataFrame, min_overlap: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(label or None, its overlap fraction, boundary, unlabelled) per window.

    A window takes the label whose intervals cover the largest fraction of it, provided that
    fraction reaches `min_overlap` and no other label also does; otherwise it straddles a
    boundary. A window no label touches at all is unlabelled.
    """
    n = starts.size
    if n == 0 or labels.empty:
        return (np.full(n, None, dtype=object), np.zeros(n, np.float32),
                np.zeros(n, bool), np.ones(n, bool))  # fmt: skip
    names = list(dict.fromkeys([*schema.LABELS, *labels["label"].astype(str)]))
    codes = pd.Categorical(labels["label"].astype(str), categories=names).codes
    ls = labels["start_s"].to_numpy(np.float64)
    le = labels["end_s"].to_numpy(np.float64)
    length = ends - starts
    cover = np.zeros((n, len(names)))
    # Chunked over windows so memory stays bounded for long sessions with many intervals.
    for lo in range(0, n, 4096):
        hi = min(lo + 4096, n)
        ov = np.minimum(ends[lo:hi, None], le[None, :]) - np.maximum(
            starts[lo:hi, None], ls[None, :]
        )
        ov = np.clip(ov, 0.0, None)
        cover[lo:hi] = np.stack([ov[:, codes == k].sum(axis=1) for k in range(len(names))], axis=1)
    cover = np.clip(cover / length[:, None], 0.0, 1.0)
    best = np.argmax(cover, axis=1)
    best_cover = cover[np.arange(n), best]
    reaching = (cover >= min_overlap - 1e-9).sum(axis=1)
    unlabelled = cover.sum(axis=1) <= 1e-12
    boundary = ~unlabelled & (reaching != 1)
    label = np.where(unlabelled | boundary, None, np.array(names, dtype=object)[best])
    return label, best_cover.astype(np.float32), boundary, unlabelled


def slice_bounds(times: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row ranges [lo, hi) of sorted `times` inside each [a, b)."""
    return np.searchsorted(times, a, side="left"), np.searchsorted(times, b, side="left")


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype("<i2")


def wav_bytes(pcm16: np.ndarray, sample_rate: int) -> bytes:
    """PCM16 mono WAV bytes of a slice."""
    return encode_wav(pcm16, sample_rate)


def npy_bytes(values: np.ndarray) -> bytes:
    """`.npy` bytes of a float32 (n, 3) telemetry slice."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(values, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def absence_reason(
    centre_dev: np.ndarray, first: float, end: float, present: np.ndarray
) -> np.ndarray:
    """Why a stream is absent in each window: before its start, after its end, or a gap."""
    reason = np.where(
        centre_dev < first, "before_start", np.where(centre_dev >= end, "after_end", "gap")
    )
    return np.where(present, "", reason)
