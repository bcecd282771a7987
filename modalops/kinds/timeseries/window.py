"""Window slicing of time-series streams: each window's rows as `.npy` float32 (n, C)."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from modalops.kinds.base import ReadBytes, ToDevice, WindowContext
from modalops.kinds.timing import absence_reason, slice_bounds, stream_period


def npy_bytes(values: np.ndarray) -> bytes:
    """`.npy` bytes of a float32 (n, C) slice."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(values, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def window(stream, to_device: ToDevice, starts: np.ndarray, ends: np.ndarray, centres: np.ndarray,
           ctx: WindowContext, read_bytes: ReadBytes | None = None,
           skip: frozenset[str] = frozenset()) -> tuple[np.ndarray, np.ndarray, Callable[[int], bytes]]:  # fmt: skip
    centre_dev = to_device(centres)
    first, end = stream.span()
    a_dev, b_dev = to_device(starts), to_device(ends)
    lo, hi = slice_bounds(stream.times, a_dev, b_dev)
    period = stream_period(stream.times)
    expected = (b_dev - a_dev) / period if period > 0 else np.inf
    present = (hi - lo) >= ctx.min_slice_fraction * expected
    return (present, absence_reason(centre_dev, first, end, present),
            lambda w: npy_bytes(stream.values[lo[w] : hi[w]]))  # fmt: skip
