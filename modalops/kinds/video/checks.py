"""Validation of video streams: a window's payload is one frame, checked as an image stream's."""

from modalops.dataset.columns import stat_column
from modalops.kinds.image.checks import (
    DRIFT_STATS,
    label_features,
    sample_rules,
    session_relative,
    window_stats,
)
from modalops.kinds.image.checks import (
    catalog_rules as _image_catalog_rules,
)
from modalops.validate.result import Rule


def catalog_rules(stream: str, params, checks) -> list[Rule]:
    """The image rules, plus the frame rate when the spec declares one (params.fps)."""
    rules = _image_catalog_rules(stream, params, checks)
    if params.fps is not None:
        tol = params.fps_tolerance
        rules.append(
            Rule(f"catalog_{stream}_fps", stat_column(stream, "sample_rate"), "between", stream,
                 min_value=params.fps * (1 - tol), max_value=params.fps * (1 + tol))
        )  # fmt: skip
    return rules


__all__ = [
    "DRIFT_STATS",
    "catalog_rules",
    "label_features",
    "sample_rules",
    "session_relative",
    "window_stats",
]
