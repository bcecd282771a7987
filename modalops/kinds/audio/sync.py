"""Sync cue of audio streams: RMS envelope in hops aligned to the common grid."""

from __future__ import annotations

import numpy as np

from modalops.dataset.spec import CueSpec
from modalops.kinds.base import Envelope, ReadBytes
from modalops.kinds.envelopes import CueError, energy_envelope


def envelope(stream, cue: CueSpec, rate: float, read_bytes: ReadBytes | None = None,
             skip: frozenset[str] = frozenset()) -> Envelope:  # fmt: skip
    if cue.kind not in ("rms_envelope", "magnitude_envelope"):
        raise CueError(f"audio streams provide rms_envelope, not {cue.kind}")
    hop = max(int(round(stream.sample_rate / rate)), 1)
    x = np.nan_to_num(stream.samples.astype(np.float64))
    x = x - np.median(x[:: max(x.size // 100_000, 1)])
    n = x.size // hop
    if n < 2:
        raise CueError("audio shorter than two envelope hops")
    # Block mean-square: one reshape, no per-hop loop; hop boundaries sit on the grid.
    energy = (x[: n * hop].reshape(n, hop) ** 2).mean(axis=1)
    times = stream.start_s + (np.arange(n) + 0.5) * hop / stream.sample_rate
    return energy_envelope(times, energy, cue, rate)
