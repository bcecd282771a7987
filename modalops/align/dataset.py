"""The align stage over a dataset: every usable session of the catalog, in bounded batches,
written as parquet parts, with the alignment report, its plots and the quarantine rows."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modalops import quarantine as qmod
from modalops.align.audit import StreamTrace, stream_traces
from modalops.align.estimate import StreamEstimate
from modalops.align.report import build_report, read_truth, summarise, write_plots
from modalops.align.session import STAGE, align_session
from modalops.config.align import AlignConfig
from modalops.dataset.corrections import read_corrections, session_corrections
from modalops.dataset.errors import RawDataError
from modalops.dataset.layout import load_session, read_sessions
from modalops.dataset.spec import DatasetSpec
from modalops.memory import release_freed_memory
from modalops.quarantine import QuarantineRecord
from modalops.store import ObjectStore, join_key


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
    traces: list[StreamTrace] = field(default_factory=list)  # the sync report card's (audit.py)


def bad_files(raw: ObjectStore, quarantine: pd.DataFrame | None) -> frozenset[str]:
    """Item keys quarantined at ingest (the manifest holds URIs; windows look items up by key)."""
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


def _session_meta(spec: DatasetSpec, rows: pd.DataFrame) -> dict[str, Any]:
    first = rows.iloc[0]
    return {
        c: (None if c not in rows.columns or pd.isna(first[c]) else str(first[c]))
        for c in spec.meta_columns
    }


def reviewed_windows(samples: pd.DataFrame, corrections: pd.DataFrame, min_overlap: float) -> int:
    """How many of a session's kept windows a reviewed correction labelled."""
    if corrections.empty or samples.empty:
        return 0
    s0 = samples["t_start"].to_numpy(float)[:, None]
    s1 = samples["t_end"].to_numpy(float)[:, None]
    c0 = corrections["t_start"].to_numpy(float)[None, :]
    c1 = corrections["t_end"].to_numpy(float)[None, :]
    cover = np.clip(np.minimum(s1, c1) - np.maximum(s0, c0), 0.0, None).sum(axis=1)
    labelled = samples["label"].notna().to_numpy()
    return int(((cover / (s1[:, 0] - s0[:, 0]) >= min_overlap - 1e-9) & labelled).sum())


def align_dataset(
    raw: ObjectStore,
    spec: DatasetSpec,
    catalog: pd.DataFrame,
    cfg: AlignConfig,
    out: ObjectStore,
    prefix: str,
    quarantine: pd.DataFrame | None = None,
    batch_sessions: int = 8,
    labelled: bool = True,
    clock_shift: Mapping[str, float] | None = None,
    clock_cache: dict[str, dict[str, StreamEstimate]] | None = None,
    plots: bool = True,
) -> AlignResult:
    """Align every usable session of the catalog, a bounded batch at a time, and write the parts.

    Reviewed label corrections (dataset.corrections) are applied over each session's labels;
    `summary["reviewed_labels"]` counts the kept windows a review labelled. With
    `labelled=False` (batch inference) sessions need no labels and unlabelled windows are kept.
    `clock_shift` and `clock_cache` go to `align_session` (the evaluation's skew curves, which
    also leave out the plots with `plots=False`).
    """
    skip = bad_files(raw, quarantine)
    corrections = read_corrections(raw, spec)
    # Session-level labels live in the sessions table; read it once for every session.
    session_rows: dict[str, dict[str, Any]] = {}
    if spec.labels.source == "session":
        id_col = spec.sessions.id_column
        session_rows = {r[id_col]: r for r in read_sessions(raw, spec).to_dict("records")}
    records: list[QuarantineRecord] = []
    part_keys: list[str] = []
    report_rows: list[pd.DataFrame] = []
    batch: list[pd.DataFrame] = []
    n_samples = 0
    example_curve = None
    traces: list[StreamTrace] = []

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
        del frame, buf
        release_freed_memory()  # the batch's pages, before the next sessions are read

    needed = [*(["labels"] if labelled else []), *(["clock"] if spec.sessions.clock_file else [])]
    reviewed = unlabelled_sessions = 0
    for sid, rows in catalog.groupby("session_id", sort=True):
        sid = str(sid)
        status = dict(zip(rows["stream"].astype(str), rows["status"].astype(str), strict=False))
        if labelled and status.get("labels") == "absent":
            # listed but not labelled (or reviewed) yet: skipped, and reported as such
            report_rows.append(
                build_report(sid, None, reason="not labelled yet", skipped_as="not_labelled")
            )
            unlabelled_sessions += 1
            continue
        blocked = [m for m in needed if status.get(m) != "ok"]
        if blocked:
            why = f"{', '.join(blocked)} not usable at ingest"
            records.append(QuarantineRecord(STAGE, sid, None, None, f"session skipped: {why}"))
            report_rows.append(build_report(sid, None, reason=why))
            continue
        # Quarantined at ingest: not read again; absent here, the ingest row carries the reason.
        ingest_bad = frozenset(m for m in spec.stream_names if status.get(m) == "quarantined")
        try:
            mine = session_corrections(corrections, sid)
            session = load_session(
                raw, spec, sid, _session_meta(spec, rows), session_rows.get(sid), skip=ingest_bad,
                corrections=mine, labels_required=labelled,
            )  # fmt: skip
        except RawDataError as err:
            records.append(
                QuarantineRecord(STAGE, sid, None, err.path, f"session unreadable: {err.problem}")
            )
            report_rows.append(build_report(sid, None, reason=str(err)))
            continue
        aligned = align_session(
            session, spec, cfg, raw.get_bytes, skip, keep_all=not labelled,
            clock_shift=clock_shift, clock_cache=clock_cache,
        )  # fmt: skip
        reviewed += reviewed_windows(aligned.samples, mine, cfg.min_label_overlap)
        records.extend(aligned.quarantine)
        report_rows.append(build_report(sid, aligned, read_truth(raw, sid)))
        ref = session.stream(spec.reference)
        span = None if ref is None else ref.span()
        traces.extend(stream_traces(aligned.estimates, session.clocks, span, cfg))
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
        else build_report("", None).iloc[:0]
    )
    report_key = join_key(prefix, "align_report.parquet")
    buf = io.BytesIO()
    report.to_parquet(buf, index=False)
    out.put_bytes(report_key, buf.getvalue())
    plot_keys = (
        write_plots(out, join_key(prefix, "align_plots"), report, example_curve) if plots else []
    )
    qframe = qmod.to_frame(records)
    summary = summarise(report, n_samples, len(qframe), cfg)
    summary["reviewed_labels"] = int(reviewed)
    summary["sessions_not_labelled"] = int(unlabelled_sessions)
    summary["corrections_on_record"] = int(len(corrections))
    return AlignResult(part_keys, report, qframe, n_samples, summary, report_key, plot_keys, traces)
