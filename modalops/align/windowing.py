"""Windowing: cut the reference timeline into windows and label them, vectorized.

Each stream's slice of a window is its kind's business (`modalops/kinds/<kind>/window.py`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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


def label_windows(
    starts: np.ndarray,
    ends: np.ndarray,
    labels: pd.DataFrame,
    min_overlap: float,
    classes: tuple[str, ...] | list[str] = (),
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
    names = list(dict.fromkeys([*classes, *labels["label"].astype(str)]))
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
