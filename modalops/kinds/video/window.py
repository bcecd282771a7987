"""Window slicing of video streams: the frame nearest each window centre, re-encoded as JPEG."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import lru_cache

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

    @lru_cache(maxsize=1)  # overlapping windows share frames
    def frame_jpeg(i: int) -> bytes:
        return encode_jpeg(stream.frames[i], stream.params.jpeg_quality)

    why = absence_reason(centre_dev, first, end, present)
    return present, why, lambda w: frame_jpeg(int(near[w]))
