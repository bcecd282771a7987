"""Reviewed label corrections: versioned files next to the raw recordings, applied over the labels.

The feedback flow turns completed human reviews into corrections. Each pull that finds new reviews
writes one version, `<raw>/<spec.labels.corrections>/v000001.parquet`, `v000002.parquet`, ...,
and never rewrites an earlier one. Reviews that contradict a label a person already gave (the
session's label table or sessions-table label, or an earlier review of the same window) are not
applied: they go to `<folder>/conflicts/v<N>.parquet` with both labels, to be settled by a person.

Every reader goes through `read_corrections` and `apply_corrections`, so ingest hashes, align
windows and the label check all see the same labels.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

import numpy as np
import pandas as pd

from modalops.dataset.errors import RawDataError
from modalops.dataset.spec import DatasetSpec

# One row per reviewed window. `version` is the file it was written in.
CORRECTION_COLUMNS: dict[str, str] = {
    "session_id": "string",
    "window_index": "Int64",
    "t_start": "float64",
    "t_end": "float64",
    "label": "string",
    "reviewer": "string",
    "reviewed_at": "string",
    "source": "string",  # where the review came from, e.g. "label-studio"
    "task_id": "string",
    "annotation_id": "string",
    "predicted_label": "string",
    "predicted_probability": "float64",
    "model_name": "string",
    "model_version": "string",
    "agrees_with_existing": "boolean",  # a person had labelled it before, with the same class
    "version": "Int64",
    "written_at": "string",
}
CONFLICT_COLUMNS: dict[str, str] = {
    **{k: v for k, v in CORRECTION_COLUMNS.items() if k != "agrees_with_existing"},
    "existing_label": "string",
    "existing_source": "string",
}
_VERSION = re.compile(r"(?:^|/)v(\d{6})\.parquet$")


def corrections_folder(spec: DatasetSpec) -> str:
    return spec.labels.corrections.strip("/")


def _typed(df: pd.DataFrame, cols: dict[str, str]) -> pd.DataFrame:
    out = pd.DataFrame({c: df[c] if c in df.columns else None for c in cols}, index=df.index)
    return out.astype(cols).reset_index(drop=True)


@cache
def _empty_corrections() -> pd.DataFrame:
    return _typed(pd.DataFrame(), CORRECTION_COLUMNS)


def empty_corrections() -> pd.DataFrame:
    # Built once: ingest asks for one per session, and typing an empty frame costs ~10 ms.
    return _empty_corrections().copy()


def _version_keys(store, folder: str) -> list[tuple[int, str]]:
    out = []
    for key in store.list(folder):
        rest = key[len(folder) + 1 :] if key.startswith(folder + "/") else key
        m = _VERSION.search(rest)
        if m and "/" not in rest:
            out.append((int(m.group(1)), key))
    return sorted(out)


def _read_versions(store, folder: str, cols: dict[str, str]) -> pd.DataFrame:
    frames = []
    for _, key in _version_keys(store, folder):
        try:
            frames.append(pd.read_parquet(io.BytesIO(store.get_bytes(key))))
        except (OSError, ValueError) as exc:
            raise RawDataError(store.uri(key), f"unreadable label corrections ({exc})") from None
    if not frames:
        return _typed(pd.DataFrame(), cols)
    return _typed(pd.concat(frames, ignore_index=True), cols)


def read_corrections(store, spec: DatasetSpec) -> pd.DataFrame:
    """Every correction of every version (CORRECTION_COLUMNS), oldest version first."""
    return _read_versions(store, corrections_folder(spec), CORRECTION_COLUMNS)


def read_conflicts(store, spec: DatasetSpec) -> pd.DataFrame:
    """Every recorded conflict (CONFLICT_COLUMNS), oldest first."""
    return _read_versions(store, f"{corrections_folder(spec)}/conflicts", CONFLICT_COLUMNS)


def session_corrections(corrections: pd.DataFrame | None, session_id: str) -> pd.DataFrame:
    if corrections is None or corrections.empty:
        return empty_corrections()
    return corrections[corrections["session_id"] == session_id].reset_index(drop=True)


def apply_corrections(labels: pd.DataFrame | None, corrections: pd.DataFrame) -> pd.DataFrame:
    """Label intervals (start_s, end_s, label) with each reviewed window laid over them.

    The span of a correction is cut out of every interval it overlaps and replaced by the
    reviewer's class, so a review decides its window whatever the label source said there.
    """
    base = (
        labels[["start_s", "end_s", "label"]].copy()
        if labels is not None and len(labels)
        else pd.DataFrame({"start_s": [], "end_s": [], "label": []})
    )
    if corrections is None or corrections.empty:
        return base.reset_index(drop=True)
    pieces = list(base.itertuples(index=False, name=None))
    for c0, c1 in corrections[["t_start", "t_end"]].to_numpy(np.float64):
        cut = []
        for s, e, lab in pieces:
            if e <= c0 or s >= c1:
                cut.append((s, e, lab))
                continue
            if s < c0:
                cut.append((s, c0, lab))
            if e > c1:
                cut.append((c1, e, lab))
        pieces = cut
    pieces += [
        (float(r.t_start), float(r.t_end), str(r.label))
        for r in corrections.itertuples(index=False)
    ]
    out = pd.DataFrame(pieces, columns=["start_s", "end_s", "label"])
    out = out.astype({"start_s": "float64", "end_s": "float64", "label": "string"})
    return out.sort_values("start_s", kind="stable").reset_index(drop=True)


@dataclass
class RecordedReviews:
    """What one feedback pull wrote: a version number (None when nothing was new) and counts."""

    version: int | None
    written: pd.DataFrame  # CORRECTION_COLUMNS rows of this version
    conflicts: pd.DataFrame  # CONFLICT_COLUMNS rows of this version
    already_recorded: int = 0  # reviews seen by an earlier pull (same annotation id)
    keys: list[str] = field(default_factory=list)


ExistingLabel = Callable[[str, float, float], tuple[str | None, str]]


def record_reviews(
    store,
    spec: DatasetSpec,
    reviews: pd.DataFrame,
    existing_label: ExistingLabel,
    source: str = "label-studio",
) -> RecordedReviews:
    """Write new reviews as the next corrections version; contradictions become conflicts.

    `reviews` has the review columns (session_id, window_index, t_start, t_end, label, reviewer,
    reviewed_at, task_id, annotation_id, predicted_label, predicted_score or
    predicted_probability, model_name, model_version). `existing_label(session, t0, t1)` gives the
    label a person gave the window before any review (or None) and where it came from. Reviews
    whose annotation id is already recorded are skipped, so pulling twice writes nothing twice.
    """
    if reviews.empty:
        empty = _typed(pd.DataFrame(), CONFLICT_COLUMNS)
        return RecordedReviews(None, empty_corrections(), empty)
    unknown = sorted(set(reviews["label"].dropna().astype(str)) - set(spec.labels.classes))
    if unknown:
        raise ValueError(
            f"reviews: labels {unknown} are not classes of dataset {spec.name!r} "
            f"({spec.labels.classes})"
        )
    folder = corrections_folder(spec)
    previous = read_corrections(store, spec)
    previous_conflicts = read_conflicts(store, spec)
    seen = set(previous["annotation_id"].dropna().astype(str)) | set(
        previous_conflicts["annotation_id"].dropna().astype(str)
    )
    versions = _version_keys(store, folder) + _version_keys(store, f"{folder}/conflicts")
    version = max((v for v, _ in versions), default=0) + 1
    now = datetime.now(UTC).isoformat(timespec="seconds")
    by_window = {
        _window(r.session_id, r.t_start, r.t_end): (
            str(r.label),
            f"review v{r.version} by {r.reviewer}",
        )
        for r in previous.itertuples(index=False)
    }
    written, conflicts, skipped = [], [], 0
    frame = reviews.copy()
    if "predicted_probability" not in frame.columns and "predicted_score" in frame.columns:
        frame["predicted_probability"] = frame["predicted_score"]
    for rec in frame.sort_values(["reviewed_at", "annotation_id"], kind="stable").to_dict(
        "records"
    ):
        ann = None if pd.isna(rec.get("annotation_id")) else str(rec.get("annotation_id"))
        if ann is not None and ann in seen:
            skipped += 1
            continue
        sid, t0, t1 = str(rec["session_id"]), float(rec["t_start"]), float(rec["t_end"])
        label = str(rec["label"])
        row = {**rec, "source": source, "version": version, "written_at": now}
        earlier = by_window.get(_window(sid, t0, t1))
        prior, prior_source = earlier if earlier is not None else existing_label(sid, t0, t1)
        if prior is not None and prior != label:
            conflicts.append({**row, "existing_label": prior, "existing_source": prior_source})
        elif earlier is not None:
            skipped += 1  # the same class for the same window again: nothing new to apply
        else:
            written.append({**row, "agrees_with_existing": prior is not None})
            by_window[_window(sid, t0, t1)] = (label, f"review v{version} by {rec.get('reviewer')}")
        if ann is not None:
            seen.add(ann)
    out_written = _typed(pd.DataFrame(written), CORRECTION_COLUMNS)
    out_conflicts = _typed(pd.DataFrame(conflicts), CONFLICT_COLUMNS)
    keys = []
    if written:
        keys.append(_put(store, f"{folder}/v{version:06d}.parquet", out_written))
    if conflicts:
        keys.append(_put(store, f"{folder}/conflicts/v{version:06d}.parquet", out_conflicts))
    return RecordedReviews(version if keys else None, out_written, out_conflicts, skipped, keys)


def _window(session_id, t_start, t_end) -> tuple[str, float, float]:
    return str(session_id), round(float(t_start), 6), round(float(t_end), 6)


def _put(store, key: str, df: pd.DataFrame) -> str:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    store.put_bytes(key, buf.getvalue())
    return key


def corrections_digest(corrections: pd.DataFrame) -> str:
    """A content hash of the corrections of one session (changes when a review is added)."""
    import hashlib

    if corrections.empty:
        return ""
    cols = ["session_id", "t_start", "t_end", "label", "version"]
    text = corrections[cols].astype(str).to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()
