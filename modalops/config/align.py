"""Config section for cross-modal alignment and windowing."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from modalops.config.base import Section

CueKind = Literal["roi_brightness", "rms_envelope", "magnitude_envelope", "none"]

# The demo status light: a 6x6 patch at rows 2..7, cols 56..61 of a 64x64 frame, as fractions
# so the same ROI holds for any frame size (docs/alignment.md).
STATUS_LIGHT_ROI = (2 / 64, 8 / 64, 56 / 64, 62 / 64)


class CueConfig(Section):
    """Which signal in a stream carries the shared sync events (machine on/off transitions)."""

    kind: CueKind = Field(
        description="roi_brightness: mean brightness of an image region per frame (image streams); "
        "rms_envelope: RMS of a sampled signal in short hops; magnitude_envelope: vector "
        "magnitude of multi-axis samples; none: no cue, the stream uses its metadata clock."
    )
    roi: tuple[float, float, float, float] | None = Field(
        default=None,
        description="roi_brightness only: top, bottom, left, right of the region as fractions "
        "of the frame height/width (bottom/right exclusive).",
    )
    channel: Literal["mean", "red", "green", "blue"] = Field(
        default="mean", description="roi_brightness only: colour channel averaged in the region."
    )
    smooth_s: float = Field(
        default=0.1, gt=0, description="Gaussian smoothing (sigma, seconds) of the envelope."
    )

    @model_validator(mode="after")
    def _check(self) -> CueConfig:
        if self.kind == "roi_brightness":
            if self.roi is None:
                raise ValueError("roi_brightness needs roi: [top, bottom, left, right] fractions")
            top, bottom, left, right = self.roi
            if not (0 <= top < bottom <= 1 and 0 <= left < right <= 1):
                raise ValueError(
                    f"roi {list(self.roi)}: expected 0 <= top < bottom <= 1 and 0 <= left < right <= 1"
                )
        return self


# Shorthands accepted in YAML instead of a full cue mapping.
_CUE_SHORTHANDS: dict[str, dict[str, Any]] = {
    "status_light": {"kind": "roi_brightness", "roi": STATUS_LIGHT_ROI, "channel": "green"},
    "rms_envelope": {"kind": "rms_envelope"},
    "magnitude_envelope": {"kind": "magnitude_envelope"},
    "none": {"kind": "none"},
}


def _default_cues() -> dict[str, CueConfig]:
    return {
        "camera": CueConfig(**_CUE_SHORTHANDS["status_light"]),
        "audio": CueConfig(kind="rms_envelope"),
        "vibration": CueConfig(kind="magnitude_envelope"),
        "notes": CueConfig(kind="none"),
    }


class AlignConfig(Section):
    """How each stream's clock is recovered and how windows become samples."""

    mode: Literal["none", "metadata", "estimate"] = Field(
        default="estimate",
        description="none: trust raw device clocks; metadata: apply clock.json offsets; "
        "estimate: recover offset and drift from the sync cues in the data.",
    )
    reference: str = Field(default="camera", description="Stream whose clock labels are on.")
    cues: dict[str, CueConfig] = Field(
        default_factory=_default_cues,
        description="Sync cue per stream: a mapping {kind, roi, channel, smooth_s} or a shorthand "
        "(status_light, rms_envelope, magnitude_envelope, none). Streams are handled by cue kind, "
        "so a new sensor needs a config entry, not code. Streams with kind none (or no entry) "
        "use the metadata clock.",
    )
    envelope_rate_hz: float = Field(
        default=50.0, gt=0, description="Common rate envelopes are resampled to before correlation."
    )
    search_window_s: float = Field(
        default=10.0,
        gt=0,
        description="Largest |offset - centre| searched by cross-correlation (s).",
    )
    search_centre: Literal["zero", "metadata"] = Field(
        default="metadata",
        description="Centre of the search window: 0 s, or the stream's metadata offset "
        "(clock.json), which lets devices whose clocks are far apart still be searched narrowly.",
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
        "from the metadata clock (negligible over a short session).",
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
        description="Minimum peak-to-sidelobe ratio for an estimate to be trusted.",
    )
    low_confidence_policy: Literal["metadata", "quarantine_stream", "quarantine_session"] = Field(
        default="metadata",
        description="Stream whose estimate is below min_confidence: fall back to its metadata "
        "clock, quarantine that stream (presence False), or quarantine the whole session.",
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
        description="Windows missing one of required_modalities: keep them with a presence mask, "
        "or drop them.",
    )
    required_modalities: list[str] = Field(
        default_factory=lambda: ["camera", "audio", "vibration"],
        description="Modalities a window must have when presence_policy is drop (notes are sparse "
        "by nature, so they are not required by default).",
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
        description="An audio/telemetry slice with fewer than this fraction of the expected "
        "samples is treated as absent.",
    )
    notes_tolerance_s: float = Field(
        default=5.0, ge=0, description="Notes within this many seconds of a window are attached."
    )

    @field_validator("cues", mode="before")
    @classmethod
    def _expand_shorthands(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for name, cue in value.items():
            if isinstance(cue, str):
                if cue not in _CUE_SHORTHANDS:
                    raise ValueError(
                        f"cues.{name}: unknown cue {cue!r}; use one of {sorted(_CUE_SHORTHANDS)} "
                        "or a mapping {kind: ..., ...}"
                    )
                cue = dict(_CUE_SHORTHANDS[cue])
            out[name] = cue
        return out

    @model_validator(mode="after")
    def _check(self) -> AlignConfig:
        if self.reference not in self.cues:
            raise ValueError(f"reference stream {self.reference!r} has no entry in cues")
        if self.mode == "estimate" and self.cues[self.reference].kind == "none":
            raise ValueError(f"mode estimate needs a sync cue on the reference {self.reference!r}")
        if self.hop_s > self.window_s * 10:
            raise ValueError("hop_s is more than 10x window_s: most of each recording is skipped")
        return self

    def cue(self, stream: str) -> CueConfig:
        """The cue declared for `stream`; streams without an entry have none."""
        return self.cues.get(stream) or CueConfig(kind="none")
