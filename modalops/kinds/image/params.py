"""Parameters and per-window validation thresholds of image streams."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from modalops.kinds.base import KindParams

TimeUnit = Literal["s", "ms", "us", "ns"]


class Params(KindParams):
    """How an image stream's index is read and what size the model sees."""

    time_column: str = Field(default="t", description="Index column with each frame's time.")
    file_column: str = Field(
        default="file", description="Index column with each frame's file, relative to the index."
    )
    time_unit: TimeUnit = Field(default="s", description="Unit of the time column.")
    width: int = Field(default=64, ge=8, le=1024, description="Width the model sees (resized).")
    height: int = Field(default=64, ge=8, le=1024, description="Height the model sees (resized).")
    channels: Literal[1, 3] = Field(default=3, description="1: grey, 3: RGB (model input).")
    formats: list[Literal["JPEG", "PNG"]] = Field(
        default_factory=lambda: ["JPEG", "PNG"], description="Accepted frame file formats."
    )
    max_bad_fraction: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Ingest quarantines the whole stream when more than this share of frames "
        "is unreadable (each bad frame is quarantined on its own either way).",
    )


class Checks(KindParams):
    """Per-window thresholds of the validation gate for image streams."""

    frame_size: tuple[int, int] | None = Field(
        default=None, description="Expected native (width, height); null: not checked."
    )
    brightness_range: tuple[float, float] = Field(
        default=(0.02, 0.98), description="Allowed mean grey level, 0 = black, 1 = white."
    )
    min_blur: float = Field(
        default=5.0,
        ge=0,
        description="Minimum variance of the Laplacian (grey 0-255); below it a frame is blank "
        "or badly out of focus.",
    )
    max_bad_frame_fraction: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Catalog check (a warning by default): largest share of a stream's frames "
        "that are unreadable (each is quarantined on its own).",
    )

    @model_validator(mode="after")
    def _check(self) -> Checks:
        lo, hi = self.brightness_range
        if not 0 <= lo < hi <= 1:
            raise ValueError(
                f"brightness_range {list(self.brightness_range)}: expected 0 <= low < high <= 1"
            )
        return self
