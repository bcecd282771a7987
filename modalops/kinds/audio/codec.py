"""Audio payloads (PCM WAV bytes) to log-magnitude band spectrograms [bands, frames].

Self-contained on purpose: the served model decodes with this file, so it imports numpy, torch
and the standard library only (plus the kind's WAV reader and the timeseries codec's row
resampler, both numpy + stdlib).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import torch

from modalops.kinds.audio.wav import decode_wav
from modalops.kinds.payloads import binary_payload
from modalops.kinds.timeseries.codec import resample_rows


def _n_samples(params: Any, window_s: float) -> int:
    return max(1, round(int(params.sample_rate) * float(window_s)))


def _hop(params: Any) -> int:
    return max(1, round(int(params.sample_rate) / int(params.frames_per_s)))


def _n_fft(params: Any) -> int:
    # The demo's 512-point STFT at 16 kHz (31 Hz bins, hop 250) generalised: the smallest power
    # of two covering two hops (frames overlap by half or more) and giving >= `bands` bins.
    need = max(2 * _hop(params), 2 * int(params.bands))
    return 1 << (need - 1).bit_length()


@cache
def _hann(n_fft: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)  # periodic


def shape(params: Any, window_s: float) -> tuple[int, int]:
    """(bands, frames): one frame per hop of the window, plus the centred first one."""
    return (int(params.bands), 1 + _n_samples(params, window_s) // _hop(params))


def to_payload(value: Any) -> bytes | None:
    """Serving input (the file's bytes, or base64 text of them) -> the stored payload; None if absent."""
    return binary_payload(value, "audio")


def decode(payload: Any, params: Any, window_s: float) -> torch.Tensor:
    """WAV bytes -> float32 [bands, frames] log-magnitude band spectrogram; zeros when absent.

    Other sample rates are resampled to params.sample_rate; stereo is averaged; shorter clips
    are zero-padded and longer ones cropped to `window_s`, so every window has the same shape.
    With the demo's defaults (16 kHz, 64 bands, 64 frames/s, 1 s) this is the 512-point STFT
    averaged into 64 linear bands of 125 Hz: fine enough to place a 1.5-3 kHz whine, coarse
    enough for a tiny CNN.
    """
    out_shape = shape(params, window_s)
    data = to_payload(payload)
    if data is None:
        return torch.zeros(out_shape)
    try:
        x, rate = decode_wav(data, "payload")
    except ValueError as exc:
        why = getattr(exc, "problem", exc)  # RawDataError: drop the placeholder path
        raise ValueError(f"audio: payload is not a readable WAV file ({why})") from None
    rate_out, n = int(params.sample_rate), _n_samples(params, window_s)
    if rate != rate_out and len(x):
        x = resample_rows(x, max(1, round(len(x) * rate_out / rate)))
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)[:n]
    x = np.pad(x, (0, n - len(x)))
    n_fft, hop, bands = _n_fft(params), _hop(params), int(params.bands)
    # numpy rather than torch.stft: the same numbers (periodic Hann, reflect padding, centred
    # frames), but no intra-op thread pool, which on a loaded 2-core box made each call ~20x slower
    padded = np.pad(x, n_fft // 2, mode="reflect" if n > n_fft // 2 else "constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * _hann(n_fft)
    spec = np.abs(np.fft.rfft(frames, axis=1)).T  # [n_fft/2 + 1, frames]
    group = (n_fft // 2) // bands
    banded = spec[: bands * group].reshape(bands, group, -1).mean(axis=1)
    return torch.from_numpy(np.log1p(banded * 10.0).astype(np.float32))
