"""Sync-cue envelopes shared by the kinds' sync modules: grids, binning and normalisation.

A cue is chosen by its kind (the dataset spec), not by the stream's name: `roi_brightness`
works on any image or video stream, `rms_envelope` / `magnitude_envelope` on any sampled signal.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from modalops.kinds.base import Envelope

CHANNEL = {"red": 0, "green": 1, "blue": 2}


class CueError(ValueError):
    """A stream cannot provide the cue declared for it (wrong kind, no usable samples)."""


def grid(t_first: float, t_end: float, rate: float) -> tuple[int, int]:
    """(first grid index, number of points) of a regular grid covering [t_first, t_end]."""
    start = int(np.floor(t_first * rate))
    stop = int(np.ceil(t_end * rate))
    return start, max(stop - start, 1)


def binned(
    times: np.ndarray, values: np.ndarray, rate: float
) -> tuple[np.ndarray, int, np.ndarray]:
    """Mean of `values` per grid point (nearest); empty bins are filled by linear interpolation.

    Rounding to the nearest grid point keeps bin j centred on time j/rate, the same convention
    as the interpolated image envelope, so no half-bin bias enters the offset.
    """
    idx = np.rint(times * rate).astype(np.int64)
    start = int(idx[0])
    n = max(int(idx[-1]) - start + 1, 1)
    idx = np.clip(idx - start, 0, n - 1)
    sums = np.bincount(idx, weights=values, minlength=n)
    counts = np.bincount(idx, minlength=n)
    filled = counts > 0
    out = np.empty(n)
    out[filled] = sums[filled] / counts[filled]
    if not filled.all():
        pos = np.flatnonzero(filled)
        out[~filled] = np.interp(np.flatnonzero(~filled), pos, out[filled])
    return out, start, filled


def normalise(level: np.ndarray, smooth_bins: float, log: bool) -> np.ndarray:
    """Smooth, optionally log-compress, then map the 5th..95th percentile to 0..1 and clip.

    Clipping makes the on/off cue nearly binary, so knocks or a brighter frame do not create
    edges the other streams lack; log compression evens out a sensor's gain.
    """
    level = gaussian_filter1d(level.astype(np.float64), smooth_bins, mode="nearest")
    if log:
        level = np.log(level + 1e-6 * max(float(np.max(level)), 1e-12))
    lo, hi = np.percentile(level, [5, 95])
    if hi - lo <= 1e-12:
        return np.zeros_like(level)
    return np.clip((level - lo) / (hi - lo), 0.0, 1.0)


def roi_level(img: np.ndarray, roi: tuple[float, float, float, float], channel: str) -> float:
    """Mean of one image region (fractions of height and width), one colour channel or all."""
    h, w = img.shape[:2]
    top, bottom, left, right = roi
    patch = img[int(h * top) : max(int(h * bottom), int(h * top) + 1),
                int(w * left) : max(int(w * right), int(w * left) + 1)]  # fmt: skip
    if patch.ndim == 3 and channel != "mean":
        patch = patch[..., CHANNEL[channel] if patch.shape[2] >= 3 else 0]
    return float(patch.mean())


def brightness_envelope(times: np.ndarray, levels: np.ndarray, cue, rate: float) -> Envelope:
    """Per-frame region brightness (NaN where undecodable), linearly interpolated to the grid."""
    ok = np.isfinite(levels)
    if ok.sum() < 2:
        raise CueError("fewer than 2 decodable frames for roi_brightness")
    t = times[ok]
    start, n = grid(float(t[0]), float(t[-1]), rate)
    grid_t = (start + np.arange(n)) / rate
    level = np.interp(grid_t, t, levels[ok])
    valid = (grid_t >= t[0]) & (grid_t <= t[-1])
    return Envelope(normalise(level, cue.smooth_s * rate, log=False), start, rate, valid)


def energy_envelope(times: np.ndarray, energy: np.ndarray, cue, rate: float) -> Envelope:
    """RMS of per-item energies per grid bin, smoothed, log-compressed, normalised."""
    level, start, filled = binned(times, energy, rate)
    level = np.sqrt(np.maximum(level, 0.0))
    return Envelope(normalise(level, cue.smooth_s * rate, log=True), start, rate, filled)
