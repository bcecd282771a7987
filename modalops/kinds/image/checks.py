"""Validation of image streams: per-frame statistics, their rules, and label-check features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modalops.dataset.columns import stat_column
from modalops.kinds.image.stats import change_map, image_window_stats, thumbnail
from modalops.validate.result import Rule

DRIFT_STATS: tuple[str, ...] = ("brightness", "blur")


def window_stats(payloads: list, params, checks, window_s: float) -> pd.DataFrame:
    """decodable, width, height, brightness (0-1), blur (Laplacian variance), phash, sha1."""
    return image_window_stats(payloads)


def sample_rules(stream: str, params, checks) -> list[Rule]:
    def col(stat: str) -> str:
        return stat_column(stream, stat)

    lo, hi = checks.brightness_range
    rules = [Rule(f"{stream}_decodable", col("decodable"), "in_set", stream, value_set=(True,))]
    if checks.frame_size is not None:
        width, height = checks.frame_size
        rules += [
            Rule(f"{stream}_width", col("width"), "between", stream, min_value=width, max_value=width),
            Rule(f"{stream}_height", col("height"), "between", stream, min_value=height,
                 max_value=height),
        ]  # fmt: skip
    rules += [
        Rule(f"{stream}_brightness", col("brightness"), "between", stream, min_value=lo, max_value=hi),
        Rule(f"{stream}_blur", col("blur"), "between", stream, min_value=checks.min_blur),
    ]  # fmt: skip
    return rules


def catalog_rules(stream: str, params, checks) -> list[Rule]:
    """Whole-stream rules on the catalog: the share of unreadable frames, and the frame size."""
    rules = [
        Rule(
            f"catalog_{stream}_bad_frames",
            stat_column(stream, "bad_item_fraction"),
            "between",
            stream,
            max_value=checks.max_bad_frame_fraction,
            note="unreadable frames / frames (each is quarantined on its own)",
        )
    ]
    if checks.frame_size is not None:
        width, height = checks.frame_size
        rules += [
            Rule(f"catalog_{stream}_width", stat_column(stream, "width"), "between", stream,
                 min_value=width, max_value=width),
            Rule(f"catalog_{stream}_height", stat_column(stream, "height"), "between", stream,
                 min_value=height, max_value=height),
        ]  # fmt: skip
    return rules


def label_features(payload, params, window_s: float) -> np.ndarray | None:
    """8x8 RGB thumbnail (192 values) of the frame."""
    return thumbnail(payload)


def session_relative(block: np.ndarray, present: np.ndarray, session_median) -> list[np.ndarray]:
    """Label-check blocks relative to the session: the change map from its median frame."""
    return change_map(block, present, session_median)
