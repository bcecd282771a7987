"""Sync-cue envelopes: each stream's shared on/off events as a normalised signal on a common grid.

A cue is chosen by its kind (config), not by the stream's name: `roi_brightness` works on any
image stream, `rms_envelope` / `magnitude_envelope` on any sampled or timestamped signal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from modalops.config.align import CueConfig
from modalops.raw_layout import AudioStream, CameraStream, NotesStream, VibrationStream

FrameImages = Callable[[list[str]], list[np.ndarray | None]]
_CHANNEL = {"red": 0, "green": 1, "blue": 2}


class CueError(ValueError):
    """A stream cannot provide the cue declared for it (wrong stream type, no usable samples)."""


@dataclass
class Envelope:
    """A cue on a regular grid: value i is at device time (start_index + i) / rate."""

    values: np.ndarray  # float64, normalised to about [0, 1]
    start_index: int  # grid index of values[0]: grids of all streams share multiples of 1/rate
    rate: float
    valid: np.ndarray  # bool: grid points inside the stream's actual coverage

    @property
    def start_s(self) -> float:
        return self.start_index / self.rate

    def times(self) -> np.ndarray:
        return (self.start_index + np.arange(self.values.size)) / self.rate


def stream_period(times: np.ndarray) -> float:
    """Median sample period of a timestamped stream (robust to a few gaps)."""
    if times.size < 2:
        return 0.0
    return float(np.median(np.diff(times)))


def stream_span(stream: object) -> tuple[float, float] | None:
    """(first, end) device time covered by a stream; end includes the last sample's period."""
    if isinstance(stream, AudioStream):
        return stream.start_s, stream.start_s + stream.samples.size / stream.sample_rate
    if isinstance(stream, (CameraStream, VibrationStream)):
        return float(stream.times[0]), float(stream.times[-1]) + stream_period(stream.times)
    if isinstance(stream, NotesStream):
        if stream.times.size == 0:
            return None
        return float(stream.times[0]), float(stream.times[-1])
    return None


def _grid(t_first: float, t_end: float, rate: float) -> tuple[int, int]:
    start = int(np.floor(t_first * rate))
    stop = int(np.ceil(t_end * rate))
    return start, max(stop - start, 1)


def _binned(
    times: np.ndarray, values: np.ndarray, rate: float
) -> tuple[np.ndarray, int, np.ndarray]:
    """Mean of `values` per grid point (nearest); empty bins are filled by linear interpolation.

    Rounding to the nearest grid point keeps bin j centred on time j/rate, the same convention
    as the interpolated camera envelope, so no half-bin bias enters the offset.
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


def _normalise(level: np.ndarray, smooth_bins: float, log: bool) -> np.ndarray:
    """Smooth, optionally log-compress, then map the 5th..95th percentile to 0..1 and clip.

    Clipping makes the on/off cue nearly binary, so fault knocks or a brighter night frame do
    not create edges the other streams lack; log compression evens out a mic's gain.
    """
    level = gaussian_filter1d(level.astype(np.float64), smooth_bins, mode="nearest")
    if log:
        level = np.log(level + 1e-6 * max(float(np.max(level)), 1e-12))
    lo, hi = np.percentile(level, [5, 95])
    if hi - lo <= 1e-12:
        return np.zeros_like(level)
    return np.clip((level - lo) / (hi - lo), 0.0, 1.0)


def roi_brightness(
    stream: CameraStream,
    cue: CueConfig,
    rate: float,
    frame_images: FrameImages,
    skip: frozenset[str] = frozenset(),
) -> Envelope:
    """Mean brightness of the cue's image region per frame, linearly interpolated to the grid."""
    if not isinstance(stream, CameraStream):
        raise CueError(f"roi_brightness needs an image stream, got {type(stream).__name__}")
    keep = np.array([f not in skip for f in stream.files], dtype=bool)
    files = [f for f, k in zip(stream.files, keep, strict=True) if k]
    images = frame_images(files)
    top, bottom, left, right = cue.roi
    vals = np.full(len(files), np.nan)
    for i, img in enumerate(images):  # one decoded frame each: the decode itself dominates
        if img is None:
            continue
        h, w = img.shape[:2]
        patch = img[int(h * top) : max(int(h * bottom), int(h * top) + 1),
                    int(w * left) : max(int(w * right), int(w * left) + 1)]  # fmt: skip
        if patch.ndim == 3 and cue.channel != "mean":
            patch = patch[..., _CHANNEL[cue.channel]]
        vals[i] = float(patch.mean())
    ok = np.isfinite(vals)
    if ok.sum() < 2:
        raise CueError("fewer than 2 decodable frames for roi_brightness")
    times = stream.times[keep][ok]
    start, n = _grid(float(times[0]), float(times[-1]), rate)
    grid_t = (start + np.arange(n)) / rate
    level = np.interp(grid_t, times, vals[ok])
    valid = (grid_t >= times[0]) & (grid_t <= times[-1])
    return Envelope(_normalise(level, cue.smooth_s * rate, log=False), start, rate, valid)


def _energy_envelope(
    stream: object, rate: float, magnitude: bool
) -> tuple[np.ndarray, int, np.ndarray]:
    if isinstance(stream, AudioStream):
        hop = max(int(round(stream.sample_rate / rate)), 1)
        x = stream.samples.astype(np.float64)
        x = x - np.median(x[:: max(x.size // 100_000, 1)])
        n = x.size // hop
        if n < 2:
            raise CueError("audio shorter than two envelope hops")
        # Block mean-square: one reshape, no per-hop loop; hop boundaries sit on the grid.
        energy = (x[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
        times = stream.start_s + (np.arange(n) + 0.5) * hop / stream.sample_rate
        return _binned(times, energy, rate)
    if isinstance(stream, VibrationStream):
        v = stream.values.astype(np.float64)
        v = v - np.median(v, axis=0)  # gravity and sensor bias are not part of the cue
        energy = np.sum(v * v, axis=1) if magnitude else np.mean(v * v, axis=1)
        if v.shape[0] < 2:
            raise CueError("fewer than 2 telemetry rows")
        return _binned(stream.times, energy, rate)
    raise CueError(f"an energy envelope needs a sampled signal, got {type(stream).__name__}")


def energy_envelope(stream: object, cue: CueConfig, rate: float) -> Envelope:
    """RMS (or vector magnitude) of a signal per grid bin, smoothed, log-compressed, normalised."""
    level, start, filled = _energy_envelope(stream, rate, cue.kind == "magnitude_envelope")
    level = np.sqrt(np.maximum(level, 0.0))
    return Envelope(_normalise(level, cue.smooth_s * rate, log=True), start, rate, filled)


def envelope(
    stream: object,
    cue: CueConfig,
    rate: float,
    frame_images: FrameImages | None = None,
    skip: frozenset[str] = frozenset(),
) -> Envelope:
    """Dispatch on the cue kind; raises CueError when the stream cannot provide it."""
    if cue.kind == "roi_brightness":
        if frame_images is None:
            raise CueError("roi_brightness needs frame images, but no frame reader was given")
        return roi_brightness(stream, cue, rate, frame_images, skip)
    if cue.kind in ("rms_envelope", "magnitude_envelope"):
        return energy_envelope(stream, cue, rate)
    raise CueError(f"cue kind {cue.kind!r} has no envelope")
