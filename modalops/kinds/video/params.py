"""Parameters and per-window validation thresholds of video streams."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modalops.kinds.base import KindParams
from modalops.kinds.image.params import Checks as ImageChecks


class Params(KindParams):
    """How a video is decoded and what size the model sees."""

    width: int = Field(default=64, ge=8, le=1024, description="Width the model sees (resized).")
    height: int = Field(default=64, ge=8, le=1024, description="Height the model sees (resized).")
    channels: Literal[1, 3] = Field(default=3, description="1: grey, 3: RGB (model input).")
    fps: float | None = Field(
        default=None, gt=0, description="Expected frame rate; null: whatever the file has."
    )
    fps_tolerance: float = Field(
        default=0.2, ge=0, lt=1, description="Allowed relative difference from fps."
    )
    start_field: str = Field(
        default="start_s",
        description="Clock-file field adding a device-time start to the timestamps (0 if absent).",
    )
    jpeg_quality: int = Field(
        default=90, ge=50, le=100, description="JPEG quality of the frame stored per window."
    )


class Checks(ImageChecks):
    """Per-window thresholds (as for image streams)."""
