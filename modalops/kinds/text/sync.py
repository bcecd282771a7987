"""Text streams carry no sync cue: their clock is the starting guess (or sync markers)."""

from __future__ import annotations

from modalops.dataset.spec import CueSpec
from modalops.kinds.base import Envelope, ReadBytes
from modalops.kinds.envelopes import CueError


def envelope(stream, cue: CueSpec, rate: float, read_bytes: ReadBytes | None = None,
             skip: frozenset[str] = frozenset()) -> Envelope:  # fmt: skip
    raise CueError("text streams provide no sync cue")
