"""Sync cue of video streams: region brightness per decoded frame (roi_brightness) and frame
differences."""

from __future__ import annotations

import numpy as np

from modalops.dataset.spec import CueSpec
from modalops.kinds.base import Envelope, ReadBytes
from modalops.kinds.envelopes import CueError, brightness_envelope, frame_cues, roi_level


def envelope(stream, cue: CueSpec, rate: float, read_bytes: ReadBytes | None = None,
             skip: frozenset[str] = frozenset()) -> Envelope:  # fmt: skip
    if cue.kind != "roi_brightness":
        raise CueError(f"video streams provide roi_brightness, not {cue.kind}")
    levels = np.array([roi_level(f, cue.roi, cue.channel) for f in stream.frames])
    return brightness_envelope(stream.times, levels, cue, rate)


def candidates(stream, cue: CueSpec, rate: float, read_bytes: ReadBytes | None = None,
               skip: frozenset[str] = frozenset()) -> dict[str, Envelope]:  # fmt: skip
    """Brightness `edges` and `level`, and frame-difference `motion`."""
    if cue.kind != "roi_brightness":
        raise CueError(f"video streams provide roi_brightness, not {cue.kind}")
    return frame_cues(zip(stream.times, stream.frames, strict=True), cue, rate)
