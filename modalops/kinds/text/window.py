"""Window slicing of text streams: events within params.tolerance_s of a window, joined."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from modalops.kinds.base import ReadBytes, ToDevice, WindowContext


def window(stream, to_device: ToDevice, starts: np.ndarray, ends: np.ndarray, centres: np.ndarray,
           ctx: WindowContext, read_bytes: ReadBytes | None = None,
           skip: frozenset[str] = frozenset()) -> tuple[np.ndarray, np.ndarray, Callable[[int], str]]:  # fmt: skip
    p = stream.params
    # The device clock is monotonic in the reference clock: compare on the device clock.
    lo = np.searchsorted(stream.times, to_device(starts - p.tolerance_s), side="left")
    hi = np.searchsorted(stream.times, to_device(ends + p.tolerance_s), side="right")
    present = hi > lo
    why = np.where(present, "", "gap")
    return present, why, lambda w: p.joiner.join(stream.texts[lo[w] : hi[w]])
