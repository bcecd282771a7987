"""Window slicing of text streams: events within params.tolerance_s of a window, joined."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from modalops.kinds.base import ReadBytes, ToDevice, WindowContext


def window(stream, to_device: ToDevice, starts: np.ndarray, ends: np.ndarray, centres: np.ndarray,
           ctx: WindowContext, read_bytes: ReadBytes | None = None,
           skip: frozenset[str] = frozenset()) -> tuple[np.ndarray, np.ndarray, Callable[[int], str]]:  # fmt: skip
    p = stream.params
    tol = p.tolerance_s if p is not None else ctx.text_tolerance_s
    joiner = p.joiner if p is not None else " | "
    # The device clock is monotonic in the reference clock: compare on the device clock.
    lo = np.searchsorted(stream.times, to_device(starts - tol), side="left")
    hi = np.searchsorted(stream.times, to_device(ends + tol), side="right")
    present = hi > lo
    why = np.where(present, "", "gap")
    return present, why, lambda w: joiner.join(stream.texts[lo[w] : hi[w]])
