"""Parameters and per-window validation thresholds of audio streams."""

from __future__ import annotations

from pydantic import Field, model_validator

from modalops.kinds.base import KindParams


class Params(KindParams):
    """How an audio file is read and what the model sees."""

    sample_rate: int = Field(
        default=16000, ge=1000, le=192000, description="Rate the model sees (resampled)."
    )
    start_field: str = Field(
        default="start_s",
        description="Clock-file field holding the device time of the first sample (0 if absent).",
    )
    bands: int = Field(default=64, ge=8, le=256, description="Spectrogram frequency bands.")
    frames_per_s: int = Field(
        default=64, ge=8, le=400, description="Spectrogram frames per second."
    )


class Checks(KindParams):
    """Per-window thresholds of the validation gate for audio streams."""

    duration_tolerance: float = Field(
        default=0.1, ge=0, lt=1, description="Allowed relative difference from the window length."
    )
    max_clip_fraction: float = Field(
        default=0.01, ge=0, le=1, description="Largest share of samples at full scale (clipped)."
    )
    file_rate: int | None = Field(
        default=None,
        ge=1,
        description="Expected native sample rate of the file (Hz), checked per window; null: "
        "any rate (it is resampled to params.sample_rate for the model).",
    )
    rms_range: tuple[float, float] = Field(
        default=(1e-5, 0.7),
        description="Allowed RMS (full scale = 1); below the low end the input is dead.",
    )

    @model_validator(mode="after")
    def _check(self) -> Checks:
        lo, hi = self.rms_range
        if not 0 <= lo < hi:
            raise ValueError(f"rms_range {list(self.rms_range)}: expected 0 <= low < high")
        return self
