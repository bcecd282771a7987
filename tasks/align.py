"""Align task: recover each stream's clock and cut aligned multimodal windows."""

from __future__ import annotations

import json
import time

import pandas as pd
from prefect import get_run_logger, task

from modalops.align import AlignResult, align_dataset
from modalops.align.audit import render_sync_report, worst_first
from modalops.align.report import summarise, write_plots
from modalops.config.align import AlignConfig
from modalops.dataset.spec import DatasetSpec
from modalops.markdown import bullets
from modalops.register.tracking import (
    TrackingContext,
    align_metrics,
    log_metrics,
    log_store_files,
    log_tags,
    log_text,
)
from modalops.runs import RunContext, put_frame
from modalops.store import open_store
from tasks.artifacts import frame_markdown, publish_markdown
from tasks.ingest import IngestOutput


@task(retries=1, retry_delay_seconds=[5])
def align_sessions(
    run: RunContext,
    spec: DatasetSpec,
    raw_uri: str,
    ingested: IngestOutput,
    cfg: AlignConfig,
    tracking: TrackingContext,
) -> AlignResult:
    """Estimate offsets and drift per session and stream, then window every session.
    The summary goes to the MLflow parent run as `align.*`, the report and plots under `align/`."""
    raw = open_store(raw_uri, endpoint_url=run.endpoint_url)
    started = time.perf_counter()
    result = align_dataset(
        raw,
        spec,
        ingested.catalog,
        cfg,
        out=run.store(),
        prefix=run.prefix,
        quarantine=ingested.quarantine,
    )
    return record_alignment(run, cfg, tracking, result, time.perf_counter() - started)


@task(retries=1, retry_delay_seconds=[5], task_run_name="align batch {index}")
def align_batch(
    run: RunContext,
    spec: DatasetSpec,
    raw_uri: str,
    ingested: IngestOutput,
    cfg: AlignConfig,
    sessions: list[str],
    index: int,
) -> tuple[AlignResult, float]:
    """Align one batch of sessions (on a Dask worker) under its own part prefix, so batches'
    parts, reports and plots never collide."""
    raw = open_store(raw_uri, endpoint_url=run.endpoint_url)
    catalog = ingested.catalog[ingested.catalog["session_id"].astype(str).isin(sessions)]
    started = time.perf_counter()
    result = align_dataset(
        raw,
        spec,
        catalog,
        cfg,
        out=run.store(),
        prefix=run.key("batches", f"{index:05d}"),
        quarantine=ingested.quarantine,
    )
    return result, time.perf_counter() - started


@task
def merge_alignment(
    run: RunContext,
    cfg: AlignConfig,
    tracking: TrackingContext,
    parts: list[tuple[AlignResult, float]],
) -> AlignResult:
    """One AlignResult from the batches': parts in batch order, one report, the summary
    recomputed over all sessions (as a single-process align computes it)."""
    results = [p for p, _ in parts]
    store = run.store()
    report = pd.concat([r.report for r in results], ignore_index=True)
    quarantine = pd.concat([r.quarantine for r in results], ignore_index=True)
    n_samples = sum(r.n_samples for r in results)
    summary = summarise(report, n_samples, len(quarantine), cfg)
    for key in ("reviewed_labels", "sessions_not_labelled"):
        summary[key] = int(sum(r.summary.get(key, 0) for r in results))
    summary["corrections_on_record"] = int(results[0].summary.get("corrections_on_record", 0))
    report_key = run.key("align_report.parquet")
    put_frame(store, report_key, report)
    plots = run.key("align_plots")
    plot_keys = write_plots(store, plots, report, None)
    # the example correlation curve lives only in the batch that drew it: the first batch's
    curve = next((k for k in results[0].plot_keys if k.endswith("correlation_example.png")), None)
    if curve is not None:
        store.put_bytes(f"{plots}/correlation_example.png", store.get_bytes(curve))
    result = AlignResult(
        [k for r in results for k in r.part_keys],
        report,
        quarantine,
        n_samples,
        summary,
        report_key,
        plot_keys,
        [t for r in results for t in r.traces],
    )
    return record_alignment(run, cfg, tracking, result, sum(s for _, s in parts))


def record_alignment(
    run: RunContext,
    cfg: AlignConfig,
    tracking: TrackingContext,
    result: AlignResult,
    seconds: float,
) -> AlignResult:
    """Write the align quarantine, log the summary and plots, publish the report (in a task)."""
    log = get_run_logger()
    store = run.store()
    quarantine_key = run.key("quarantine", "align.parquet")
    put_frame(store, quarantine_key, result.quarantine)
    log.info(
        "aligned %d samples in %d parts (mode=%s)",
        result.n_samples,
        len(result.part_keys),
        cfg.mode,
    )
    # windows dropped by policy (boundaries) are counted in the report, not warned about
    problems = result.quarantine[~result.quarantine["reason"].str.startswith("window dropped")]
    for row in problems.head(20).itertuples():
        log.warning("quarantined %s/%s: %s", row.session_id, row.stream, row.reason)
    cols = [
        c
        for c in (
            "session_id",
            "stream",
            "method",
            "offset_s",
            "drift_ppm",
            "confidence",
            "cue",
            "residual_offset_s",
            "fallback_reason",
        )
        if c in result.report.columns
    ]
    summary = bullets(result.summary)  # rounded: 12.12, not 12.118220730649366
    publish_markdown(
        "align-summary",
        f"# Alignment (mode `{cfg.mode}`)\n\n{summary}\n\n## Per stream\n\n"
        + frame_markdown(result.report[cols], max_rows=60),
        "Estimated clock offsets, confidence and residuals",
    )
    metrics, tags = align_metrics(result.summary)
    log_metrics(tracking, {**metrics, "align.seconds": seconds})  # read by `modalops plan`
    log_tags(tracking, tags)
    log_text(tracking, json.dumps(result.summary, indent=2, default=str), "align/summary.json")
    files = {"align/quarantine.parquet": quarantine_key}
    if result.report_key:
        files["align/report.parquet"] = result.report_key
    plots = run.key("align_plots")
    files.update({f"align/plots/{k[len(plots) + 1 :]}": k for k in result.plot_keys})
    files["align/sync_report.html"] = publish_sync_report(run, result)
    log_store_files(tracking, store, files)
    return result


def publish_sync_report(run: RunContext, result: AlignResult) -> str:
    """Write the sync report card (modalops.align.audit) to the run's store and point a Prefect
    artifact at it, with the worst rows; returns its key (logged as align/sync_report.html)."""
    store = run.store()
    key = run.key("sync_report.html")
    store.put_text(key, render_sync_report(result.report, result.traces, result.quarantine))
    worst = worst_first(result.report)
    cols = ["session_id", "stream", "verdict", "offset_s", "confidence", "residual_offset_s"]
    publish_markdown(
        "sync-report",
        "# Sync report card (worst first)\n\nThe page: MLflow parent run, artifact "
        f"`align/sync_report.html`; store `{store.uri(key)}` (`modalops sync audit` writes the "
        "same page).\n\n" + frame_markdown(worst[cols], max_rows=15),
        "Per session and stream, worst first: clock, confidence, residual; the page has the plots",
    )
    return key
