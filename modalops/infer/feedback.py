"""Feedback: completed human reviews become versioned label corrections next to the raw data.

A review that contradicts a label a person already gave the window (the session's own label
table or sessions-table label, or an earlier review) is recorded as a conflict and not applied.
The next training run reads the corrections through the dataset layout (dataset.corrections),
so its dataset version changes and its alignment summary counts the reviewed labels it used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from modalops.align.windowing import label_windows
from modalops.dataset import layout
from modalops.dataset.corrections import RecordedReviews, record_reviews
from modalops.dataset.errors import RawDataError
from modalops.dataset.spec import DatasetSpec
from modalops.store import ObjectStore


def human_label_lookup(raw: ObjectStore, spec: DatasetSpec, min_overlap: float):
    """(session, t0, t1) -> (label a person gave that window before any review, or None; source).

    Reads each session's own labels once. A window the labels do not decide (no interval, or
    straddling a boundary) has no human label, so a review of it is no conflict.
    """
    cache: dict[str, pd.DataFrame | None] = {}
    rows: dict[str, dict] | None = None

    def labels_of(sid: str) -> pd.DataFrame | None:
        nonlocal rows
        if sid not in cache:
            row = None
            if spec.labels.source == "session":
                if rows is None:
                    table = layout.read_sessions(raw, spec)
                    rows = {str(r[spec.sessions.id_column]): r for r in table.to_dict("records")}
                row = rows.get(sid)
            try:
                cache[sid] = layout.read_labels(raw, spec, sid, row)
            except RawDataError:
                cache[sid] = None  # no label table (a new recording), or none usable
        return cache[sid]

    source = (
        f"sessions table column {spec.labels.column}"
        if spec.labels.source == "session"
        else f"label table {spec.labels.path}"
    )

    def lookup(sid: str, t0: float, t1: float) -> tuple[str | None, str]:
        labels = labels_of(sid)
        if labels is None or labels.empty:
            return None, source
        label, _, _, _ = label_windows(
            np.array([t0]), np.array([t1]), labels, min_overlap, spec.labels.classes
        )
        return (None if label[0] is None else str(label[0])), source

    return lookup


def record_feedback(
    raw: ObjectStore, spec: DatasetSpec, reviews: pd.DataFrame, min_overlap: float,
    source: str = "label-studio",
) -> RecordedReviews:  # fmt: skip
    """Write the new reviews as the next corrections version under the raw root."""
    return record_reviews(raw, spec, reviews, human_label_lookup(raw, spec, min_overlap), source)
