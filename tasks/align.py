"""Align task: recover each stream's clock and cut aligned multimodal windows."""

from __future__ import annotations

import json

from prefect import get_run_logger, task

from modalops.align import AlignResult, align_dataset
from modalops.config.align import AlignConfig
from modalops.dataset.spec import DatasetSpec
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
    log = get_run_logger()
    raw = open_store(raw_uri, endpoint_url=run.endpoint_url)
    store = run.store()
    result = align_dataset(
        raw,
        spec,
        ingested.catalog,
        cfg,
        out=store,
        prefix=run.prefix,
        quarantine=ingested.quarantine,
    )
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
            "residual_offset_s",
            "fallback_reason",
        )
        if c in result.report.columns
    ]
    summary = "\n".join(f"- **{k}**: {v}" for k, v in result.summary.items())
    publish_markdown(
        "align-summary",
        f"# Alignment (mode `{cfg.mode}`)\n\n{summary}\n\n## Per stream\n\n"
        + frame_markdown(result.report[cols], max_rows=60),
        "Estimated clock offsets, confidence and residuals",
    )
    metrics, tags = align_metrics(result.summary)
    log_metrics(tracking, metrics)
    log_tags(tracking, tags)
    log_text(tracking, json.dumps(result.summary, indent=2, default=str), "align/summary.json")
    files = {"align/quarantine.parquet": quarantine_key}
    if result.report_key:
        files["align/report.parquet"] = result.report_key
    plots = run.key("align_plots")
    files.update({f"align/plots/{k[len(plots) + 1 :]}": k for k in result.plot_keys})
    log_store_files(tracking, store, files)
    return result
