"""Returning freed heap memory to the system between bounded batches.

A stage that streams parts, shards or epochs frees each batch before the next, but glibc keeps
freed heap pages (per thread arena, and between fragmented blocks), so the resident size of a
long run still creeps up with the number of batches, though no object outlives its batch
(benchmarks/cost_growth.py: tracemalloc saw 2 MB left after training while the peak RSS rose
with every epoch). `release_freed_memory` asks the C library to hand such pages back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to call
        return None


def release_freed_memory() -> None:
    """Give heap pages freed so far back to the system (glibc's `malloc_trim(0)`); a no-op
    where the C library has no such call. Costs about a millisecond; call it between batches."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
