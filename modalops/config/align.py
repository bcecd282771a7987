"""Config section for cross-modal alignment and windowing.

What is known about each stream (its sync cue, its clock's starting guess and search range,
whether it is required) is declared in the dataset spec; this section says how hard to work.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from modalops.config.base import Section


class AlignConfig(Section):
    """How each stream's clock is recovered and how windows become samples."""

    mode: Literal["none", "metadata", "estimate"] = Field(
        default="estimate",
        description="none: trust raw device clocks; metadata: use each stream's starting-guess "
        "clock (the spec's clock.initial: the clock file or zero); estimate: recover offset and "
        "drift from the sync cues in the data, for streams whose spec says clock.estimate.",
    )
    envelope_rate_hz: float = Field(
        default=50.0, gt=0, description="Common rate envelopes are resampled to before correlation."
    )
    drift_segments: int = Field(
        default=8,
        ge=1,
        description="Most segments per session whose offsets are fitted linearly for drift.",
    )
    min_segment_s: float = Field(
        default=40.0,
        gt=0,
        description="Shortest drift segment (s); shorter sessions use one segment and take drift "
        "from the starting-guess clock (negligible over a short session).",
    )
    clock_jump_s: float = Field(
        default=0.5,
        gt=0,
        description="A segment this far (s) off the linear fit is treated as a clock jump "
        "(device restart) and the fit becomes piecewise.",
    )
    max_drift_ppm: float = Field(
        default=1000.0,
        gt=0,
        description="Fitted drifts beyond this are implausible; the constant offset is kept.",
    )
    min_confidence: float = Field(
        default=6.0,
        ge=0,
        description="Minimum confidence for an estimate to be trusted: the peak-to-sidelobe "
        "ratio against what the reference's own echoes do not explain, lowered by a rival peak "
        "inside the search range and by lags that scatter across the session "
        "(docs/alignment.md). Measured: 50 of 51 real-data streams above 6 within tolerance, none "
        "of 80 streams moved to the wrong session above 3.2, demo streams 18-79 "
        "(docs/real-data.md).",
    )
    low_confidence_policy: Literal["metadata", "quarantine_stream", "quarantine_session"] = Field(
        default="metadata",
        description="Stream whose estimate is below min_confidence: fall back to its "
        "starting-guess clock, quarantine that stream (presence False), or quarantine the whole "
        "session.",
    )
    window_s: float = Field(default=1.0, gt=0, description="Sample window length (seconds).")
    hop_s: float = Field(default=1.0, gt=0, description="Hop between window starts (seconds).")
    min_label_overlap: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Minimum fraction of a window a label must cover to label it.",
    )
    boundary_policy: Literal["drop", "mark"] = Field(
        default="drop",
        description="Windows straddling a label boundary (no label reaches min_label_overlap "
        "or two labels do): drop them, or keep them marked with boundary=True and a null label.",
    )
    presence_policy: Literal["keep", "drop"] = Field(
        default="keep",
        description="Windows missing one of the spec's required streams: keep them with a "
        "presence mask, or drop them.",
    )
    frame_tolerance_periods: float = Field(
        default=1.5,
        gt=0,
        description="A frame farther than this many frame periods from the window centre is "
        "treated as absent.",
    )
    min_slice_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="An audio or time-series slice with fewer than this fraction of the "
        "expected samples is treated as absent.",
    )

    @model_validator(mode="after")
    def _check(self) -> AlignConfig:
        if self.hop_s > self.window_s * 10:
            raise ValueError("hop_s is more than 10x window_s: most of each recording is skipped")
        return self
