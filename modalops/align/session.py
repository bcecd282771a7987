"""One session's alignment: estimate clocks, cut windows on the reference clock, attach each
stream's slice by asking its kind, and apply the drop policies."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from modalops.align.estimate import StreamEstimate, estimate_clocks
from modalops.align.windowing import label_windows, window_bounds
from modalops.config.align import AlignConfig
from modalops.dataset import columns
from modalops.dataset.layout import SessionStreams
from modalops.dataset.spec import DatasetSpec
from modalops.kinds.base import WindowContext
from modalops.quarantine import QuarantineRecord

STAGE = "align"
ABSENCE_REASONS = ("before_start", "after_end", "gap", "missing")


@dataclass
class AlignedSession:
    """One session's samples, clock estimates, dropped windows and quarantine rows."""

    samples: pd.DataFrame  # the aligned-sample table: columns.sample_columns(spec)
    estimates: list[StreamEstimate]
    dropped: pd.DataFrame  # window_index, reason
    quarantine: list[QuarantineRecord]
    # Per stream: windows present / absent by reason (before_start, after_end, gap, missing).
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_windows: int = 0
    status: str = "ok"  # ok | quarantined
    reason: str | None = None


def empty_samples(spec: DatasetSpec) -> pd.DataFrame:
    """An aligned-sample table with no rows and the contract's dtypes."""
    return _frame(spec, {c: [] for c in columns.sample_columns(spec)})


def _frame(spec: DatasetSpec, cols: dict[str, Any]) -> pd.DataFrame:
    names = columns.sample_columns(spec)
    df = pd.DataFrame({c: cols[c] for c in names})
    types = {"window_index": "int32", "t_start": "float64", "t_end": "float64",
             "label_overlap": "float32", "boundary": "bool", "align_confidence": "float32"}  # fmt: skip
    types.update({columns.presence_column(s): "bool" for s in spec.stream_names})
    df = df.astype(types)
    df["label"] = df["label"].astype("string")
    for s in spec.stream_names:
        if spec.kind_of(s).payload == "text":
            df[columns.payload_column(s)] = df[columns.payload_column(s)].astype("string")
        else:
            df[columns.payload_column(s)] = df[columns.payload_column(s)].astype(object)
    for c in ("session_id", *spec.meta_columns):
        df[c] = df[c].astype("string")
    return df


def _quarantined(spec: DatasetSpec, session: SessionStreams, estimates: list[StreamEstimate],
                 reason: str, records: list[QuarantineRecord]) -> AlignedSession:  # fmt: skip
    records.append(QuarantineRecord(STAGE, session.session_id, None, None, reason))
    dropped = pd.DataFrame(
        {"window_index": pd.Series(dtype="int32"), "reason": pd.Series(dtype="string")}
    )
    return AlignedSession(empty_samples(spec), estimates, dropped, records, status="quarantined",
                          reason=reason)  # fmt: skip


def _ref_span(est: StreamEstimate, stream: Any) -> tuple[float, float] | None:
    span = stream.span()
    if span is None:
        return None
    return float(est.to_reference(span[0])), float(est.to_reference(span[1]))


def shift_clocks(
    estimates: Mapping[str, StreamEstimate], shift: Mapping[str, float], reference: str
) -> dict[str, StreamEstimate]:
    """Copies of `estimates` with each stream in `shift` read that many seconds late on its
    device clock (a skew injected after estimation). The reference defines time: not shiftable."""
    if shift.get(reference, 0.0):
        raise ValueError(
            f"the reference stream {reference} defines the timeline: it has no clock to shift"
        )
    out = {}
    for name, est in estimates.items():
        d = float(shift.get(name, 0.0))
        pieces = [(t, off + d, ppm) for t, off, ppm in est.pieces]
        out[name] = replace(est, offset_s=est.offset_s + d, pieces=pieces) if d else replace(est)
    return out


def align_session(
    session: SessionStreams,
    spec: DatasetSpec,
    cfg: AlignConfig,
    read_bytes: Callable[[str], bytes],
    bad_files: frozenset[str] = frozenset(),
    keep_all: bool = False,
    clock_shift: Mapping[str, float] | None = None,
    clock_cache: dict[str, dict[str, StreamEstimate]] | None = None,
) -> AlignedSession:
    """Estimate clocks, cut windows on the reference clock, attach every stream's slice.

    `keep_all` (batch inference) drops no window: unlabelled and boundary windows are kept with
    label None, and windows missing a required stream are kept too (verification routes them).
    `clock_shift` (the evaluation's skew curves) moves named streams' estimated clocks by that
    many seconds before cutting; `clock_cache` keeps each session's estimates, so re-cutting
    the same session with other shifts does not estimate its clocks again.
    """
    sid, ref = session.session_id, spec.reference
    records: list[QuarantineRecord] = []
    for stream_name, problem in session.problems:
        records.append(QuarantineRecord(STAGE, sid, stream_name, problem.path,
                                        f"unreadable: {problem.problem}"))  # fmt: skip
    ref_stream = session.stream(ref)
    if ref_stream is None or ref_stream.span() is None:
        return _quarantined(spec, session, [], f"reference stream {ref} missing", records)
    if clock_cache is not None and sid in clock_cache:
        estimates = {k: replace(e) for k, e in clock_cache[sid].items()}
    else:
        estimates = estimate_clocks(session, spec, cfg, read_bytes, bad_files)
        if clock_cache is not None:
            clock_cache[sid] = {k: replace(e) for k, e in estimates.items()}
    if clock_shift:
        estimates = shift_clocks(estimates, clock_shift, ref)
    est_list = list(estimates.values())
    for est in est_list:
        if not est.usable and est.method != "none":
            records.append(
                QuarantineRecord(STAGE, sid, est.stream, None, est.fallback_reason or "unusable")
            )
    bad_session = next((e for e in est_list if e.quarantine_session), None)
    if bad_session is not None:
        return _quarantined(
            spec, session, est_list, f"{bad_session.stream}: {bad_session.fallback_reason}", records
        )

    ref_first, ref_end = ref_stream.span()
    # Streams whose corrected span misses the reference entirely are unusable. Sparse kinds
    # (text events) are not checked: a quiet stretch is not a clock problem.
    non_overlap: list[str] = []
    checked: list[str] = []
    for est in est_list:
        stream = session.stream(est.stream)
        if est.stream == ref or not est.usable or stream is None or spec.kind_of(est.stream).sparse:
            continue
        checked.append(est.stream)
        span = _ref_span(est, stream)
        if span is None or span[1] <= ref_first or span[0] >= ref_end:
            est.usable = False
            why = (f"does not overlap the reference: covers {span[0]:.1f}..{span[1]:.1f} s, "
                   f"reference {ref_first:.1f}..{ref_end:.1f} s")  # fmt: skip
            est.fallback_reason = f"{est.fallback_reason}; {why}" if est.fallback_reason else why
            non_overlap.append(est.stream)
            records.append(QuarantineRecord(STAGE, sid, est.stream, None, why))
    if checked and len(non_overlap) == len(checked):
        reason = "streams do not overlap the reference: " + ", ".join(non_overlap)
        return _quarantined(spec, session, est_list, reason, records)

    starts, ends = window_bounds(ref_first, ref_end, cfg.window_s, cfg.hop_s)
    n = starts.size
    centres = 0.5 * (starts + ends)
    label, overlap, boundary, unlabelled = label_windows(
        starts, ends, session.labels, cfg.min_label_overlap, spec.labels.classes
    )
    ctx = WindowContext(cfg.window_s, cfg.frame_tolerance_periods, cfg.min_slice_fraction)

    presence: dict[str, np.ndarray] = {}
    absent_why: dict[str, np.ndarray] = {}
    builders: dict[str, Callable[[int], Any]] = {}
    for name in spec.stream_names:
        est = estimates.get(name)
        stream = session.stream(name)
        if est is None or stream is None or not est.usable:
            presence[name] = np.zeros(n, bool)
            absent_why[name] = np.full(n, "missing", dtype=object)
            continue
        present, why, build = spec.kind_of(name).windows.window(
            stream, est.to_device, starts, ends, centres, ctx, read_bytes, bad_files
        )
        presence[name], absent_why[name], builders[name] = present, why, build

    # Drop reasons, first that applies: unlabelled, boundary (policy drop), missing (policy drop).
    reason = np.full(n, "", dtype=object)
    if not keep_all:
        reason[unlabelled] = "unlabelled"
    if cfg.boundary_policy == "drop" and not keep_all:
        reason[(reason == "") & boundary] = "boundary"
    if cfg.presence_policy == "drop" and not keep_all:
        for m in spec.required_streams:
            reason[(reason == "") & ~presence[m]] = f"missing_{m}"
    keep = reason == ""
    kept = np.flatnonzero(keep)

    stats: dict[str, dict[str, Any]] = {}
    for name in spec.stream_names:
        p, why = presence[name], absent_why[name]
        stats[name] = {
            "windows_present": int(p[keep].sum()),
            "completeness": float(p[keep].mean()) if kept.size else math.nan,
            **{f"absent_{r}": int(((why == r) & keep).sum()) for r in ABSENCE_REASONS},
        }
        after = int(((why == "after_end") & keep).sum())
        if after and not spec.kind_of(name).sparse:
            records.append(QuarantineRecord(STAGE, sid, name, None,
                           f"stream ends early: absent in the last {after} windows"))  # fmt: skip

    confidences = [
        e.confidence
        for e in est_list
        if e.method == "estimate" and e.usable and np.isfinite(e.confidence)
    ]
    align_conf = min(confidences) if confidences else math.nan
    cols: dict[str, Any] = {
        "session_id": [sid] * kept.size,
        "window_index": kept.astype(np.int32),
        "t_start": starts[kept],
        "t_end": ends[kept],
        "label": label[kept],
        "label_overlap": overlap[kept],
        "boundary": boundary[kept],
        "align_confidence": np.full(kept.size, align_conf, np.float32),
    }
    for c in spec.meta_columns:
        v = session.meta.get(c)
        cols[c] = [None if v is None else str(v)] * kept.size
    for name in spec.stream_names:
        p = presence[name][kept]
        cols[columns.presence_column(name)] = p
        build = builders.get(name)
        empty: Any = "" if spec.kind_of(name).payload == "text" else None
        cols[columns.payload_column(name)] = [
            build(int(w)) if ok and build is not None else empty
            for w, ok in zip(kept, p, strict=True)
        ]
    dropped_idx = np.flatnonzero(~keep)
    dropped = pd.DataFrame({"window_index": dropped_idx.astype(np.int32),
                            "reason": pd.array(reason[dropped_idx].tolist(), dtype="string")})  # fmt: skip
    records.extend(
        QuarantineRecord(STAGE, sid, None, None, f"window dropped: {r}", int(w))
        for w, r in zip(dropped_idx, reason[dropped_idx], strict=True)
    )
    return AlignedSession(_frame(spec, cols), est_list, dropped, records, stats, n_windows=n)
