"""Sync cue of time-series streams: RMS or vector-magnitude envelope of the channels."""

from __future__ import annotations

import numpy as np

from modalops.dataset.spec import CueSpec
from modalops.kinds.base import Envelope, ReadBytes
from modalops.kinds.envelopes import (
    CueError,
    binned,
    edges,
    energy_envelope,
    flat_or_clipped,
    level,
)


def _energy(stream, cue: CueSpec) -> tuple[np.ndarray, np.ndarray]:
    """(times, per-row energy) of the finite rows, each channel's median (gravity, bias) removed."""
    if cue.kind not in ("rms_envelope", "magnitude_envelope"):
        raise CueError(f"time-series streams provide rms/magnitude envelopes, not {cue.kind}")
    ok = np.all(np.isfinite(stream.values), axis=1)  # NaN bursts carry no cue
    v = stream.values[ok].astype(np.float64)
    if v.shape[0] < 2:
        raise CueError("fewer than 2 finite rows")
    why = flat_or_clipped(v, "value")
    if why:
        raise CueError(why)
    v = v - np.median(v, axis=0)  # gravity and sensor bias are not part of the cue
    energy = np.sum(v * v, axis=1) if cue.kind == "magnitude_envelope" else np.mean(v * v, axis=1)
    return stream.times[ok], energy


def envelope(stream, cue: CueSpec, rate: float, read_bytes: ReadBytes | None = None,
             skip: frozenset[str] = frozenset()) -> Envelope:  # fmt: skip
    times, energy = _energy(stream, cue)
    return energy_envelope(times, energy, cue, rate)


def candidates(stream, cue: CueSpec, rate: float, read_bytes: ReadBytes | None = None,
               skip: frozenset[str] = frozenset()) -> dict[str, Envelope]:  # fmt: skip
    """`edges` of the energy envelope, and the `level` of the mean-removed magnitude."""
    times, energy = _energy(stream, cue)
    magnitude, start, filled = binned(times, np.sqrt(energy), rate)
    return {
        "edges": edges(energy_envelope(times, energy, cue, rate)),
        "level": level(magnitude, start, rate, filled, cue.smooth_s, log=False),
    }
