"""Parameters and per-window validation thresholds of text streams."""

from __future__ import annotations

from pydantic import Field

from modalops.kinds.base import KindParams
from modalops.kinds.image.params import TimeUnit


class Params(KindParams):
    """How events are read and attached to windows."""

    time_field: str = Field(default="t", description="JSON field with the event's device time.")
    text_field: str = Field(default="text", description="JSON field with the event's text.")
    time_unit: TimeUnit = Field(default="s", description="Unit of the time field.")
    tolerance_s: float = Field(
        default=5.0, ge=0, description="Events within this many seconds of a window are attached."
    )
    joiner: str = Field(default=" | ", description="Separator of events attached to one window.")
    dim: int = Field(default=256, ge=16, le=4096, description="Hashed bag-of-words size.")


class Checks(KindParams):
    """Per-window thresholds of the validation gate for text streams."""

    max_len: int = Field(default=4000, ge=1, description="Longest plausible text of one window.")
