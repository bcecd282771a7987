"""Window slicing of image streams: the frame nearest each window centre, as stored (JPEG or PNG)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from modalops.kinds.base import ReadBytes, ToDevice, WindowContext
from modalops.kinds.timing import absence_reason, nearest_index, stream_period


def window(stream, to_device: ToDevice, starts: np.ndarray, ends: np.ndarray, centres: np.ndarray,
           ctx: WindowContext, read_bytes: ReadBytes, skip: frozenset[str] = frozenset()
           ) -> tuple[np.ndarray, np.ndarray, Callable[[int], bytes]]:  # fmt: skip
    """Presence, absence reason and payload builder per window; bad frames are skipped."""
    centre_dev = to_device(centres)
    first, end = stream.span()
    good_idx = np.flatnonzero(np.array([f not in skip for f in stream.files], dtype=bool))
    tol = ctx.frame_tolerance_periods * stream_period(stream.times)
    near = nearest_index(stream.times[good_idx], centre_dev, tol)
    present = near >= 0
    frame = np.where(present, good_idx[np.maximum(near, 0)] if good_idx.size else -1, -1)

    @lru_cache(maxsize=1)  # overlapping windows share frames
    def frame_bytes(i: int) -> bytes:
        return read_bytes(stream.files[i])

    why = absence_reason(centre_dev, first, end, present)
    return present, why, lambda w: frame_bytes(int(frame[w]))
