"""Window slicing of video streams: the frame nearest each window centre, re-encoded as JPEG."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from modalops.kinds.base import ReadBytes, ToDevice, WindowContext
from modalops.kinds.timing import absence_reason, nearest_index, stream_period


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def window(stream, to_device: ToDevice, starts: np.ndarray, ends: np.ndarray, centres: np.ndarray,
           ctx: WindowContext, read_bytes: ReadBytes | None = None,
           skip: frozenset[str] = frozenset()) -> tuple[np.ndarray, np.ndarray, Callable[[int], bytes]]:  # fmt: skip
    centre_dev = to_device(centres)
    first, end = stream.span()
    tol = ctx.frame_tolerance_periods * stream_period(stream.times)
    near = nearest_index(stream.times, centre_dev, tol)
    present = near >= 0
    quality = stream.params.jpeg_quality if stream.params is not None else 90
    cache: dict[int, bytes] = {}

    def build(w: int) -> bytes:
        i = int(near[w])
        if i not in cache:  # overlapping windows share frames
            cache.clear()
            cache[i] = encode_jpeg(stream.frames[i], quality)
        return cache[i]

    return present, absence_reason(centre_dev, first, end, present), build
