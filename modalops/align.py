"""Align stage: recover every stream's clock, cut reference-clock windows into multimodal samples.

The pieces live in `modalops.alignment` (cues, estimate, windowing, report); this module holds
the per-session assembly and the dataset loop, and re-exports the public names.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modalops import quarantine as qmod
from modalops import schema
from modalops.alignment.cues import FrameImages, stream_period, stream_span
from modalops.alignment.estimate import StreamEstimate, estimate_clocks
from modalops.alignment.windowing import (
    absence_reason,
    label_windows,
    nearest_index,
    npy_bytes,
    slice_bounds,
    to_pcm16,
    wav_bytes,
    window_bounds,
)
from modalops.config.align import AlignConfig
from modalops.quarantine import QuarantineRecord
from modalops.raw_layout import (
    AudioStream,
    CameraStream,
    NotesStream,
    RawDataError,
    SessionStreams,
    VibrationStream,
    load_session,
)
from modalops.store import ObjectStore, join_key

__all__ = [
    "AlignResult",
    "AlignedSession",
    "StreamEstimate",
    "align_dataset",
    "align_session",
    "decode_frames",
    "empty_samples",
    "estimate_clocks",
]

STAGE = "align"
SAMPLE_COLUMNS: tuple[str, ...] = (
    "session_id", "window_index", "t_start", "t_end", "label", "label_overlap", "boundary",
    *schema.PRESENCE_COLUMNS.values(), *schema.PAYLOAD_COLUMNS.values(),
    *schema.META_COLUMNS, "align_confidence",
)  # fmt: skip


@dataclass
class AlignedSession:
    """One session's samples, clock estimates, dropped windows and quarantine rows."""

    samples: pd.DataFrame  # the aligned-sample table (docs/architecture.md)
    estimates: list[StreamEstimate]
    dropped: pd.DataFrame  # window_index, reason
    quarantine: list[QuarantineRecord]
    # Per stream: windows present / absent by reason (before_start, after_end, gap, missing).
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_windows: int = 0
    status: str = "ok"  # ok | quarantined
    reason: str | None = None


def empty_samples() -> pd.DataFrame:
    """An aligned-sample table with no rows and the contract's dtypes."""
    return _frame({c: [] for c in SAMPLE_COLUMNS})


def _frame(cols: dict[str, Any]) -> pd.DataFrame:
    df = pd.DataFrame({c: cols[c] for c in SAMPLE_COLUMNS})
    types = {"window_index": "int32", "t_start": "float64", "t_end": "float64",
             "label_overlap": "float32", "boundary": "bool", "align_confidence": "float32"}  # fmt: skip
    types.update({c: "bool" for c in schema.PRESENCE_COLUMNS.values()})
    df = df.astype(types)
    df["label"] = df["label"].astype("string")
    df["notes_text"] = df["notes_text"].astype("string")
    for c in ("session_id", *schema.META_COLUMNS):
        df[c] = df[c].astype("string")
    return df


def decode_frames(read_bytes: Callable[[str], bytes]) -> FrameImages:
    """A frame reader for roi_brightness: JPEG keys -> RGB arrays (None where undecodable)."""
    from PIL import Image  # imported lazily: PIL is only needed when frames are decoded

    def read(files: list[str]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for key in files:  # one JPEG each: decoding dominates, not the loop
            try:
                with Image.open(io.BytesIO(read_bytes(key))) as img:
                    out.append(np.asarray(img.convert("RGB")))
            except Exception:  # noqa: BLE001 - a corrupt frame is skipped, the rest go on
                out.append(None)
        return out

    return read


def _quarantined(session: SessionStreams, estimates: list[StreamEstimate], reason: str,
                 records: list[QuarantineRecord]) -> AlignedSession:  # fmt: skip
    records.append(QuarantineRecord(STAGE, session.session_id, None, None, reason))
    return AlignedSession(empty_samples(), estimates, pd.DataFrame({"window_index": pd.Series(dtype="int32"),
                          "reason": pd.Series(dtype="string")}), records, status="quarantined",
                          reason=reason)  # fmt: skip


def _ref_span(est: StreamEstimate, stream: object) -> tuple[float, float] | None:
    span = stream_span(stream)
    if span is None:
        return None
    return float(est.to_reference(span[0])), float(est.to_reference(span[1]))


def align_session(
    session: SessionStreams,
    cfg: AlignConfig,
    read_bytes: Callable[[str], bytes],
    bad_files: frozenset[str] = frozenset(),
) -> AlignedSession:
    """Estimate clocks, cut windows on the reference clock, attach every stream's slice."""
    sid, ref = session.session_id, cfg.reference
    records: list[QuarantineRecord] = []
    for problem in session.problems:
        modality = next((m for m in schema.MODALITIES if m in problem.path.rsplit("/", 2)[-1] or
                         f"/{m}/" in problem.path), None)  # fmt: skip
        records.append(
            QuarantineRecord(STAGE, sid, modality, problem.path, f"unreadable: {problem.problem}")
        )
    ref_stream = session.stream(ref)
    if ref_stream is None:
        return _quarantined(session, [], f"reference stream {ref} missing", records)
    estimates = estimate_clocks(session, cfg, decode_frames(read_bytes), bad_files)
    est_list = list(estimates.values())
    for est in est_list:
        if not est.usable and est.method != "none":
            records.append(
                QuarantineRecord(STAGE, sid, est.stream, None, est.fallback_reason or "unusable")
            )
    bad_session = next((e for e in est_list if e.quarantine_session), None)
    if bad_session is not None:
        return _quarantined(
            session, est_list, f"{bad_session.stream}: {bad_session.fallback_reason}", records
        )

    ref_first, ref_end = stream_span(ref_stream)
    # Streams whose corrected span misses the reference entirely are unusable.
    non_overlap: list[str] = []
    checked: list[str] = []
    for est in est_list:
        stream = session.stream(est.stream)
        if est.stream == ref or not est.usable or stream is None or isinstance(stream, NotesStream):
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
        return _quarantined(session, est_list, reason, records)

    starts, ends = window_bounds(ref_first, ref_end, cfg.window_s, cfg.hop_s)
    n = starts.size
    centres = 0.5 * (starts + ends)
    label, overlap, boundary, unlabelled = label_windows(
        starts, ends, session.labels, cfg.min_label_overlap
    )

    presence: dict[str, np.ndarray] = {}
    absent_why: dict[str, np.ndarray] = {}
    builders: dict[str, Callable[[int], Any]] = {}
    stats: dict[str, dict[str, Any]] = {}
    for modality in schema.MODALITIES:
        est = estimates.get(modality)
        stream = session.stream(modality)
        if est is None or stream is None or not est.usable:
            presence[modality] = np.zeros(n, bool)
            absent_why[modality] = np.full(n, "missing", dtype=object)
            continue
        present, why, build = _stream_payload(
            stream, est, starts, ends, centres, cfg, read_bytes, bad_files
        )
        presence[modality], absent_why[modality], builders[modality] = present, why, build

    # Drop reasons, first that applies: unlabelled, boundary (policy drop), missing (policy drop).
    reason = np.full(n, "", dtype=object)
    reason[unlabelled] = "unlabelled"
    if cfg.boundary_policy == "drop":
        reason[(reason == "") & boundary] = "boundary"
    if cfg.presence_policy == "drop":
        for m in cfg.required_modalities:
            if m in presence:
                reason[(reason == "") & ~presence[m]] = f"missing_{m}"
    keep = reason == ""
    kept = np.flatnonzero(keep)

    for modality in schema.MODALITIES:
        p, why = presence[modality], absent_why[modality]
        stats[modality] = {
            "windows_present": int(p[keep].sum()),
            "completeness": float(p[keep].mean()) if kept.size else math.nan,
            **{
                f"absent_{r}": int(((why == r) & keep).sum())
                for r in ("before_start", "after_end", "gap", "missing")
            },
        }
        after = int(((why == "after_end") & keep).sum())
        if after and modality != "notes":
            records.append(QuarantineRecord(STAGE, sid, modality, None,
                           f"stream ends early: absent in the last {after} windows"))  # fmt: skip

    confidences = [
        e.confidence
        for e in est_list
        if e.method == "estimate" and e.usable and np.isfinite(e.confidence)
    ]
    align_conf = min(confidences) if confidences else math.nan
    meta = {c: session.meta.get(c) for c in schema.META_COLUMNS}
    cols: dict[str, Any] = {
        "session_id": [sid] * kept.size,
        "window_index": kept.astype(np.int32),
        "t_start": starts[kept],
        "t_end": ends[kept],
        "label": label[kept],
        "label_overlap": overlap[kept],
        "boundary": boundary[kept],
        "align_confidence": np.full(kept.size, align_conf, np.float32),
        **{c: [None if v is None else str(v)] * kept.size for c, v in meta.items()},
    }
    for modality in schema.MODALITIES:
        p = presence[modality][kept]
        cols[schema.PRESENCE_COLUMNS[modality]] = p
        build = builders.get(modality)
        empty: Any = "" if modality == "notes" else None
        cols[schema.PAYLOAD_COLUMNS[modality]] = [
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
    return AlignedSession(_frame(cols), est_list, dropped, records, stats, n_windows=n)


def _stream_payload(
    stream: object,
    est: StreamEstimate,
    starts: np.ndarray,
    ends: np.ndarray,
    centres: np.ndarray,
    cfg: AlignConfig,
    read_bytes: Callable[[str], bytes],
    bad_files: frozenset[str],
) -> tuple[np.ndarray, np.ndarray, Callable[[int], Any]]:
    """Presence, absence reason and a payload builder per window for one stream (by its type)."""
    span = stream_span(stream)
    centre_dev = est.to_device(centres)
    if isinstance(stream, CameraStream):
        good = np.array([f not in bad_files for f in stream.files], dtype=bool)
        good_idx = np.flatnonzero(good)
        tol = cfg.frame_tolerance_periods * stream_period(stream.times)
        near = nearest_index(stream.times[good], centre_dev, tol)
        present = near >= 0
        frame = np.where(present, good_idx[np.maximum(near, 0)], -1)
        cache: dict[int, bytes] = {}

        def build(w: int) -> bytes:
            i = int(frame[w])
            if i not in cache:  # overlapping windows share frames
                cache.clear()
                cache[i] = read_bytes(stream.files[i])
            return cache[i]

        return present, absence_reason(centre_dev, span[0], span[1], present), build
    a_dev, b_dev = est.to_device(starts), est.to_device(ends)
    if isinstance(stream, AudioStream):
        sr = stream.sample_rate
        i0 = np.rint((a_dev - stream.start_s) * sr).astype(np.int64)
        i1 = np.rint((b_dev - stream.start_s) * sr).astype(np.int64)
        c0, c1 = np.clip(i0, 0, stream.samples.size), np.clip(i1, 0, stream.samples.size)
        present = (c1 - c0) >= cfg.min_slice_fraction * (i1 - i0)
        pcm = to_pcm16(stream.samples)
        return (present, absence_reason(centre_dev, span[0], span[1], present),
                lambda w: wav_bytes(pcm[c0[w] : c1[w]], sr))  # fmt: skip
    if isinstance(stream, VibrationStream):
        lo, hi = slice_bounds(stream.times, a_dev, b_dev)
        period = stream_period(stream.times)
        expected = (b_dev - a_dev) / period if period > 0 else np.inf
        present = (hi - lo) >= cfg.min_slice_fraction * expected
        return (present, absence_reason(centre_dev, span[0], span[1], present),
                lambda w: npy_bytes(stream.values[lo[w] : hi[w]]))  # fmt: skip
    if isinstance(stream, NotesStream):
        t_ref = est.to_reference(stream.times)
        order = np.argsort(t_ref, kind="stable")
        t_ref = t_ref[order]
        lo = np.searchsorted(t_ref, starts - cfg.notes_tolerance_s, side="left")
        hi = np.searchsorted(t_ref, ends + cfg.notes_tolerance_s, side="right")
        present = hi > lo
        why = np.where(present, "", "gap")
        return present, why, lambda w: " | ".join(stream.texts[i] for i in order[lo[w] : hi[w]])
    raise TypeError(f"no windowing rule for stream type {type(stream).__name__}")


# ---- dataset -----------------------------------------------------------------------------------


@dataclass
class AlignResult:
    """What the align stage wrote and found."""

    part_keys: list[str]  # <prefix>/aligned/part-NNNNN.parquet
    report: pd.DataFrame  # per session x stream (docs/alignment.md)
    quarantine: pd.DataFrame  # align-stage rows only
    n_samples: int
    summary: dict[str, Any]
    report_key: str | None = None
    plot_keys: list[str] = field(default_factory=list)


def _bad_files(raw: ObjectStore, quarantine: pd.DataFrame | None) -> frozenset[str]:
    """Frame keys quarantined at ingest (the manifest holds URIs; windows look frames up by key)."""
    if quarantine is None or quarantine.empty:
        return frozenset()
    rows = quarantine[quarantine["stage"].astype(str) == "ingest"]
    root = raw.uri("").rstrip("/") + "/"
    out = set()
    for uri in rows["uri"].dropna().astype(str):
        out.add(uri)
        if uri.startswith(root):
            out.add(uri[len(root) :])
    return frozenset(out)


def _session_meta(rows: pd.DataFrame) -> dict[str, Any]:
    first = rows.iloc[0]
    return {
        c: (None if c not in rows.columns or pd.isna(first[c]) else str(first[c]))
        for c in schema.META_COLUMNS
    }


def align_dataset(
    raw: ObjectStore,
    catalog: pd.DataFrame,
    cfg: AlignConfig,
    out: ObjectStore,
    prefix: str,
    quarantine: pd.DataFrame | None = None,
    batch_sessions: int = 8,
) -> AlignResult:
    """Align every usable session of the catalog, a bounded batch at a time, and write the parts."""
    from modalops.alignment.report import build_report, read_truth, summarise, write_plots

    bad_files = _bad_files(raw, quarantine)
    records: list[QuarantineRecord] = []
    part_keys: list[str] = []
    report_rows: list[pd.DataFrame] = []
    batch: list[pd.DataFrame] = []
    n_samples = 0
    example_curve = None

    def flush() -> None:
        nonlocal n_samples
        if not batch:
            return
        frame = pd.concat(batch, ignore_index=True)
        key = join_key(prefix, "aligned", f"part-{len(part_keys):05d}.parquet")
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        out.put_bytes(key, buf.getvalue())
        part_keys.append(key)
        n_samples += len(frame)
        batch.clear()

    for sid, rows in catalog.groupby("session_id", sort=True):
        sid = str(sid)
        status = dict(zip(rows["modality"].astype(str), rows["status"].astype(str), strict=False))
        reasons = dict(
            zip(
                rows["modality"].astype(str),
                rows.get("reason", pd.Series([None] * len(rows))),
                strict=False,
            )
        )
        blocked = [m for m in ("clock", "labels") if status.get(m) != "ok"]
        if blocked:
            why = f"{', '.join(blocked)} not usable at ingest"
            records.append(QuarantineRecord(STAGE, sid, None, None, f"session skipped: {why}"))
            report_rows.append(build_report(sid, [], {}, None, status="quarantined", reason=why))
            continue
        try:
            session = load_session(raw, sid, _session_meta(rows))
        except RawDataError as err:
            records.append(
                QuarantineRecord(STAGE, sid, None, err.path, f"session unreadable: {err.problem}")
            )
            report_rows.append(
                build_report(sid, [], {}, None, status="quarantined", reason=str(err))
            )
            continue
        for m in schema.MODALITIES:
            if status.get(m) == "quarantined" and session.stream(m) is not None:
                # Quarantined at ingest: absent here too; the ingest row already carries the reason.
                setattr(session, m, None)
                session.problems.append(RawDataError(m, f"quarantined at ingest: {reasons.get(m)}"))
        aligned = align_session(session, cfg, raw.get_bytes, bad_files)
        ingest_bad = {m for m in schema.MODALITIES if status.get(m) == "quarantined"}
        records.extend(
            r
            for r in aligned.quarantine
            if not (r.modality in ingest_bad and r.reason.startswith("unreadable"))
        )
        truth = read_truth(raw, sid)
        report_rows.append(build_report(sid, aligned.estimates, aligned.stats, truth, status=aligned.status,
                                        reason=aligned.reason, aligned=aligned))  # fmt: skip
        if example_curve is None:
            example_curve = next(
                (e for e in aligned.estimates if e.curve is not None and e.usable), None
            )
        if len(aligned.samples):
            batch.append(aligned.samples)
        del aligned, session
        if len(batch) >= batch_sessions:
            flush()
    flush()
    report = (
        pd.concat(report_rows, ignore_index=True)
        if report_rows
        else build_report("", [], {}, None).iloc[:0]
    )
    report_key = join_key(prefix, "align_report.parquet")
    buf = io.BytesIO()
    report.to_parquet(buf, index=False)
    out.put_bytes(report_key, buf.getvalue())
    plot_keys = write_plots(out, join_key(prefix, "align_plots"), report, example_curve)
    qframe = qmod.to_frame(records)
    summary = summarise(report, n_samples, len(qframe), cfg)
    return AlignResult(part_keys, report, qframe, n_samples, summary, report_key, plot_keys)
