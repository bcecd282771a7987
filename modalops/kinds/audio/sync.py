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
    """Magnitude spectra (frames x bins) of the band, frames of two hops every hop (Hann)."""
    n = x.size // hop - 1
    frames = np.lib.stride_tricks.as_strided(x, (n, 2 * hop), (x.strides[0] * hop, x.strides[0]))
    f = np.fft.rfftfreq(2 * hop, 1.0 / sample_rate)
    keep = (f >= band[0]) & (f <= band[1])
    return np.abs(np.fft.rfft(frames * np.hanning(2 * hop), axis=1)[:, keep])


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
    if 2 * hop >= 8 and band[1] > band[0]:
        spec = band_spectra(x, hop, stream.sample_rate, band)
        if spec.shape[0] >= 2 and spec.shape[1] >= 1:
            # frame k spans samples [k hop, (k + 2) hop): its centre is (k + 1) hop
            times = stream.start_s + (np.arange(spec.shape[0]) + 1.0) * hop / stream.sample_rate
            energy, start, filled = binned(times, (spec**2).sum(axis=1), rate)
            out["level"] = level(energy, start, rate, filled, cue.smooth_s, log=True)
            logspec = np.log(spec + 1e-4 * float(spec.mean()) + 1e-12)
            flux = np.concatenate([[0.0], np.maximum(np.diff(logspec, axis=0), 0.0).mean(axis=1)])
            fl, start, filled = binned(times, flux, rate)
            # flux already measures rises: taken as a level, not differentiated again
            out["onsets"] = level(fl, start, rate, filled, cue.smooth_s / 2, log=False)
    return out
