"""Sync cue of time-series streams: RMS or vector-magnitude envelope of the channels."""

from __future__ import annotations

import numpy as np

from modalops.dataset.spec import CueSpec
from modalops.kinds.base import Envelope, ReadBytes
from modalops.kinds.envelopes import CueError, energy_envelope


def envelope(stream, cue: CueSpec, rate: float, read_bytes: ReadBytes | None = None,
             skip: frozenset[str] = frozenset()) -> Envelope:  # fmt: skip
    if cue.kind not in ("rms_envelope", "magnitude_envelope"):
        raise CueError(f"time-series streams provide rms/magnitude envelopes, not {cue.kind}")
    ok = np.all(np.isfinite(stream.values), axis=1)  # NaN bursts carry no cue
    v = stream.values[ok].astype(np.float64)
    if v.shape[0] < 2:
        raise CueError("fewer than 2 finite rows")
    v = v - np.median(v, axis=0)  # gravity and sensor bias are not part of the cue
    energy = np.sum(v * v, axis=1) if cue.kind == "magnitude_envelope" else np.mean(v * v, axis=1)
    return energy_envelope(stream.times[ok], energy, cue, rate)
