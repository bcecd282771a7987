"""Config section for cross-modal alignment and windowing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from modalops.config.base import Section


class AlignConfig(Section):
    """How each stream's clock is recovered and how windows become samples."""

    mode: Literal["none", "metadata", "estimate"] = Field(
        default="estimate",
        description="none: trust raw device clocks; metadata: apply clock.json offsets; "
        "estimate: recover offset and drift from the sync cues in the data.",
    )
    reference: str = Field(default="camera", description="Stream whose clock labels are on.")
    cues: dict[str, str] = Field(
        default_factory=lambda: {
            "camera": "status_light",
            "audio": "rms_envelope",
            "vibration": "magnitude_envelope",
            "notes": "none",
        },
        description="Sync cue per stream (a cue name, or 'none' for streams without one, "
        "which then fall back to the metadata clock).",
    )
    envelope_rate_hz: float = Field(
        default=50.0, gt=0, description="Common rate envelopes are resampled to before correlation."
    )
    search_window_s: float = Field(
        default=10.0, gt=0, description="Largest |offset| searched by cross-correlation (seconds)."
    )
    drift_segments: int = Field(
        default=3, ge=1, description="Segments per session whose offsets are fitted linearly for drift."
    )
    min_confidence: float = Field(
        default=3.0, ge=0, description="Minimum peak-to-sidelobe ratio for an estimate to be trusted."
    )
    low_confidence_policy: Literal["quarantine", "metadata"] = Field(
        default="metadata",
        description="What happens to a stream whose estimate is below min_confidence.",
    )
    window_s: float = Field(default=1.0, gt=0, description="Sample window length (seconds).")
    hop_s: float = Field(default=1.0, gt=0, description="Hop between window starts (seconds).")
    min_label_overlap: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Minimum fraction of a window a label interval must cover to label it.",
    )
    boundary_policy: Literal["drop", "mark"] = Field(
        default="drop",
        description="Windows straddling a label boundary (no label reaches min_label_overlap "
        "or two labels overlap): drop them, or keep them marked with boundary=True.",
    )
    presence_policy: Literal["keep", "drop"] = Field(
        default="keep",
        description="Windows where a modality is missing: keep them with a presence mask, or drop.",
    )
    notes_tolerance_s: float = Field(
        default=5.0, ge=0, description="Notes within this many seconds of a window are attached."
    )

    @model_validator(mode="after")
    def _check(self) -> AlignConfig:
        if self.reference not in self.cues:
            raise ValueError(f"reference stream {self.reference!r} has no entry in cues")
        if self.hop_s > self.window_s * 10:
            raise ValueError("hop_s is more than 10x window_s: most of each recording is skipped")
        return self
