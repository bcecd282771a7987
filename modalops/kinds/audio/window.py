"""Window slicing of audio streams: each window's samples as PCM16 mono WAV at the file's rate."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from modalops.kinds.audio.wav import encode_wav
from modalops.kinds.base import ReadBytes, ToDevice, WindowContext
from modalops.kinds.timing import absence_reason


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.nan_to_num(samples) * 32768.0), -32768, 32767).astype("<i2")


def window(stream, to_device: ToDevice, starts: np.ndarray, ends: np.ndarray, centres: np.ndarray,
           ctx: WindowContext, read_bytes: ReadBytes | None = None,
           skip: frozenset[str] = frozenset()) -> tuple[np.ndarray, np.ndarray, Callable[[int], bytes]]:  # fmt: skip
    centre_dev = to_device(centres)
    first, end = stream.span()
    sr = stream.sample_rate
    i0 = np.rint((to_device(starts) - stream.start_s) * sr).astype(np.int64)
    i1 = np.rint((to_device(ends) - stream.start_s) * sr).astype(np.int64)
    c0, c1 = np.clip(i0, 0, stream.samples.size), np.clip(i1, 0, stream.samples.size)
    present = (c1 - c0) >= ctx.min_slice_fraction * (i1 - i0)
    pcm = to_pcm16(stream.samples)
    return (present, absence_reason(centre_dev, first, end, present),
            lambda w: encode_wav(pcm[c0[w] : c1[w]], sr))  # fmt: skip
