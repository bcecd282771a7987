"""Parameters and per-window validation thresholds of time-series streams."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from modalops.kinds.base import KindParams
from modalops.kinds.image.params import TimeUnit


class Params(KindParams):
    """How a table is read and what the model sees."""

    time_column: str = Field(default="t", description="Column with each row's device time.")
    time_unit: TimeUnit = Field(default="s", description="Unit of the time column.")
    channels: list[str] = Field(description="Numeric channel columns, in model order.")
    sample_rate: float = Field(gt=0, description="Expected rows per second.")
    format: Literal["auto", "csv", "tsv", "parquet"] = Field(
        default="auto", description="File format; auto: from the extension."
    )

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("channels: name at least one column")
        if len(set(value)) != len(value):
            raise ValueError(f"channels: duplicated names in {value}")
        return value


class Checks(KindParams):
    """Per-window thresholds of the validation gate for time-series streams."""

    rate_tolerance: float = Field(
        default=0.2, ge=0, lt=1, description="Allowed relative difference from sample_rate."
    )
    max_nan_fraction: float = Field(
        default=0.02, ge=0, le=1, description="Largest share of NaN values in one window."
    )
    abs_max: float | None = Field(
        default=None, gt=0, description="Largest plausible |value|; null: not checked."
    )
    flat_std: float = Field(
        default=1e-7,
        ge=0,
        description="A channel whose range (max - min) in a window is at or below this is "
        "flat-lined (a stuck sensor).",
    )
    max_stream_nan_fraction: float = Field(
        default=0.05, ge=0, le=1, description="Largest share of NaN values in a whole stream."
    )
