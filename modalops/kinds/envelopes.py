"""Sync-cue envelopes shared by the kinds' sync modules: grids, binning and normalisation.

A cue is chosen by its kind (the dataset spec), not by the stream's name: `roi_brightness`
works on any image or video stream, `rms_envelope` / `magnitude_envelope` on any sampled signal.

Each kind offers several *representations* of its cue (`sync.candidates`), each ready to be
cross-correlated as is, and the estimator keeps the pair it is most sure of:

| name     | what                                                        | suits                     |
|----------|-------------------------------------------------------------|---------------------------|
| `edges`  | gradient of the clipped 0..1 envelope                       | clean on/off cues (demo)  |
| `level`  | the envelope itself, log-compressed, minus its 3 s moving   | continuous signals, noise |
|          | average, over its spread: levels, not only transitions      |                           |
| `onsets` | rises only (half-wave rectified gradient of the log level); | events in noise           |
|          | for audio the spectral flux of the speech band              |                           |
| `motion` | frame-difference energy (image, video)                      | displays, scene changes   |
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

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


# ---- candidate representations (see the module docstring) -------------------------------------

DETREND_S = 3.0  # slower changes (gain, posture, room level) are not timing information


def edges(env: Envelope) -> Envelope:
    """The envelope's gradient (transitions carry on/off timing), zero outside its coverage."""
    e = np.gradient(env.values)
    e[~covered(env.valid)] = 0.0
    return Envelope(e, env.start_index, env.rate, env.valid)


def covered(valid: np.ndarray) -> np.ndarray:
    """Grid points between the first and last valid point (interior gaps stay interpolated)."""
    out = np.zeros(valid.size, dtype=bool)
    idx = np.flatnonzero(valid)
    if idx.size:
        out[idx[0] : idx[-1] + 1] = True
    return out


def _standardised(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    inside = covered(valid)
    x = np.where(inside, x, 0.0)
    sd = float(np.std(x[inside])) if inside.any() else 0.0
    return x / sd if sd > 1e-12 else np.zeros_like(x)


def level(values: np.ndarray, start: int, rate: float, valid: np.ndarray, smooth_s: float,
          log: bool) -> Envelope:  # fmt: skip
    """Level representation: smoothed, optionally log-compressed, minus its moving average."""
    x = gaussian_filter1d(values.astype(np.float64), max(smooth_s * rate, 0.5), mode="nearest")
    if log:
        x = np.log(np.maximum(x, 0.0) + 1e-3 * max(float(np.percentile(x, 95)), 1e-12))
    x = x - uniform_filter1d(x, max(int(DETREND_S * rate), 3), mode="nearest")
    return Envelope(_standardised(x, valid), start, rate, valid)


def onsets(values: np.ndarray, start: int, rate: float, valid: np.ndarray, smooth_s: float,
           log: bool = True) -> Envelope:  # fmt: skip
    """Onset representation: where the (log) level rises; falls and steady parts count zero."""
    x = gaussian_filter1d(values.astype(np.float64), max(smooth_s * rate, 0.5), mode="nearest")
    if log:
        x = np.log(np.maximum(x, 0.0) + 1e-3 * max(float(np.percentile(x, 95)), 1e-12))
    rise = np.maximum(np.gradient(x), 0.0)
    return Envelope(_standardised(rise - rise.mean(), valid), start, rate, valid)


def flat_or_clipped(x: np.ndarray, what: str, full_scale: float | None = None) -> str | None:
    """Why a signal carries no timing: flat, or mostly at its full scale. None when usable."""
    if x.size < 2 or float(np.ptp(x)) <= 1e-12:
        return f"flat signal: every {what} is {float(x.flat[0]) if x.size else float('nan'):g}"
    top = full_scale if full_scale is not None else float(np.max(np.abs(x)))
    clipped = float(np.mean(np.abs(x) >= 0.999 * top))
    # a real signal touches its extreme now and then; half of it pinned there is a saturated sensor
    if clipped > 0.5:
        return f"clipped signal: {clipped:.0%} of {what}s at full scale"
    return None


def _roi(img: np.ndarray, roi: tuple[float, float, float, float], channel: str) -> np.ndarray:
    """The region of one channel (or the mean of all), as roi_level takes it."""
    h, w = img.shape[:2]
    top, bottom, left, right = roi
    patch = img[int(h * top) : max(int(h * bottom), int(h * top) + 1),
                int(w * left) : max(int(w * right), int(w * left) + 1)]  # fmt: skip
    if patch.ndim == 3:
        patch = (
            patch.mean(axis=2)
            if channel == "mean"
            else patch[..., CHANNEL[channel] if patch.shape[2] >= 3 else 0]
        )
    return patch


def frame_cues(frames, cue, rate: float) -> dict[str, Envelope]:
    """From (time, decoded frame or None) pairs: brightness `edges` and `level`, and `motion`,
    the mean absolute difference of the region from the previous decodable frame (a
    frame-difference energy: whatever changes on screen, not only brightness)."""
    times, patches = [], []
    for t, img in frames:  # one region cut per frame; the arithmetic on all of them at once
        times.append(t)
        patches.append(None if img is None else _roi(img, cue.roi, cue.channel))
    ok_idx = [i for i, p in enumerate(patches) if p is not None]
    levels = np.full(len(patches), np.nan)
    motion = np.full(len(patches), np.nan)
    shapes = {patches[i].shape for i in ok_idx}
    if len(shapes) == 1:  # frames of one size (the usual case): stacked
        stack = np.stack([patches[i] for i in ok_idx]).astype(np.float32)
        levels[ok_idx] = stack.mean(axis=(1, 2))
        step = max(1, max(stack.shape[1:3]) // 64)  # differences need no more than ~64 px a side
        small = stack[:, ::step, ::step]
        # each difference from the previous decodable frame
        motion[ok_idx[1:]] = np.abs(np.diff(small, axis=0)).mean(axis=(1, 2))
    else:
        levels[ok_idx] = [float(patches[i].mean()) for i in ok_idx]
    times_a, levels_a, motion_a = np.asarray(times, dtype=np.float64), levels, motion
    if len(ok_idx) < 2:
        raise CueError(f"fewer than 2 decodable frames for {cue.kind}")
    if np.ptp(levels[ok_idx]) <= 1e-9 and not np.nanmax(np.append(motion, 0.0)) > 0:
        raise CueError(f"flat signal: the region reads {levels[ok_idx[0]]:g} in every frame")
    out = {"edges": edges(brightness_envelope(times_a, levels_a, cue, rate))}
    ok = np.isfinite(levels_a)
    t = times_a[ok]
    start, n = grid(float(t[0]), float(t[-1]), rate)
    grid_t = (start + np.arange(n)) / rate
    valid = (grid_t >= t[0]) & (grid_t <= t[-1])
    out["level"] = level(
        np.interp(grid_t, t, levels_a[ok]), start, rate, valid, cue.smooth_s, log=False
    )
    okm = np.isfinite(motion_a)
    if okm.sum() >= 2 and np.ptp(motion_a[okm]) > 0:
        # a difference belongs between its two frames
        tm = times_a[okm] - 0.5 * np.median(np.diff(t))
        m = np.interp(grid_t, tm, motion_a[okm])
        out["motion"] = level(m, start, rate, valid, cue.smooth_s, log=True)
    return out
