"""Sync cue of audio streams: RMS envelope, speech-band level and spectral-flux onsets."""

from __future__ import annotations

import numpy as np

from modalops.dataset.spec import CueSpec
from modalops.kinds.base import Envelope, ReadBytes
from modalops.kinds.envelopes import (
    CueError,
    binned,
    edges,
    energy_envelope,
    flat_or_clipped,
    level,
)  # fmt: skip

SPEECH_BAND_HZ = (300.0, 3400.0)  # telephone band: where speech energy stands above most noise


def _samples(stream, cue: CueSpec, rate: float) -> tuple[np.ndarray, int]:
    if cue.kind not in ("rms_envelope", "magnitude_envelope"):
        raise CueError(f"audio streams provide rms_envelope, not {cue.kind}")
    hop = max(int(round(stream.sample_rate / rate)), 1)
    x = np.nan_to_num(stream.samples.astype(np.float64))
    x = x - np.median(x[:: max(x.size // 100_000, 1)])
    if x.size // hop < 2:
        raise CueError("audio shorter than two envelope hops")
    return x, hop


def _rms(stream, x: np.ndarray, hop: int, cue: CueSpec, rate: float) -> Envelope:
    n = x.size // hop
    # Block mean-square: one reshape, no per-hop loop; hop boundaries sit on the grid.
    energy = (x[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
    times = stream.start_s + (np.arange(n) + 0.5) * hop / stream.sample_rate
    return energy_envelope(times, energy, cue, rate)


def envelope(stream, cue: CueSpec, rate: float, read_bytes: ReadBytes | None = None,
             skip: frozenset[str] = frozenset()) -> Envelope:  # fmt: skip
    x, hop = _samples(stream, cue, rate)
    return _rms(stream, x, hop, cue, rate)


def band_spectra(
    x: np.ndarray, hop: int, sample_rate: int, band: tuple[float, float]
) -> np.ndarray:
    """Magnitude spectra (frames x bins) of the band, one frame per hop (Hann)."""
    from scipy import fft

    n = x.size // hop
    # float32 halves the FFT's time and is ample for an envelope; one hop per frame (20 ms at
    # 50 Hz, the usual speech frame) keeps the transform as short as the grid allows
    frames = np.asarray(x[: n * hop], dtype=np.float32).reshape(n, hop)  # no copy for float32
    f = np.fft.rfftfreq(hop, 1.0 / sample_rate)
    keep = np.flatnonzero((f >= band[0]) & (f <= band[1]))
    spec = fft.rfft(frames * np.hanning(hop).astype(np.float32), axis=1)
    return np.abs(spec[:, keep[0] : keep[-1] + 1])


def candidates(stream, cue: CueSpec, rate: float, read_bytes: ReadBytes | None = None,
               skip: frozenset[str] = frozenset()) -> dict[str, Envelope]:  # fmt: skip
    """`edges` of the RMS envelope; `level` of the speech-band energy; `onsets`: its spectral flux."""
    x, hop = _samples(stream, cue, rate)
    raw = stream.samples[:: max(stream.samples.size // 200_000, 1)]  # before the offset is removed
    why = flat_or_clipped(np.nan_to_num(raw.astype(np.float64)), "sample", full_scale=1.0)
    if why:
        raise CueError(why)
    out = {"edges": edges(_rms(stream, x, hop, cue, rate))}
    band = (SPEECH_BAND_HZ[0], min(SPEECH_BAND_HZ[1], 0.45 * stream.sample_rate))
    if hop >= 16 and band[1] > band[0]:
        # the device's float32 samples as they are: the band excludes any DC offset anyway
        spec = band_spectra(np.nan_to_num(stream.samples), hop, stream.sample_rate, band)
        if spec.shape[0] >= 2 and spec.shape[1] >= 1:
            # frame k spans samples [k hop, (k + 1) hop): its centre is (k + 1/2) hop
            times = stream.start_s + (np.arange(spec.shape[0]) + 0.5) * hop / stream.sample_rate
            energy, start, filled = binned(times, (spec**2).sum(axis=1), rate)
            out["level"] = level(energy, start, rate, filled, cue.smooth_s, log=True)
            # flux over at most ~24 bands: enough to see new sound start, a fifth of the work
            edges_ = np.linspace(0, spec.shape[1], min(24, spec.shape[1]) + 1).astype(int)[:-1]
            bands = np.add.reduceat(spec, edges_, axis=1)
            logspec = np.log(bands + np.float32(1e-4 * float(bands.mean()) + 1e-12))
            flux = np.concatenate([[0.0], np.maximum(np.diff(logspec, axis=0), 0.0).mean(axis=1)])
            fl, start, filled = binned(times, flux, rate)
            # flux already measures rises: taken as a level, not differentiated again
            out["onsets"] = level(fl, start, rate, filled, cue.smooth_s / 2, log=False)
    return out
