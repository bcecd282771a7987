"""Align task: recover each stream's clock and cut aligned multimodal windows."""

from __future__ import annotations

from prefect import get_run_logger, task

from modalops.align import AlignResult, align_dataset
from modalops.config.align import AlignConfig
from modalops.dataset.spec import DatasetSpec
from modalops.runs import RunContext, put_frame
from modalops.store import open_store
from tasks.artifacts import frame_markdown, publish_markdown
from tasks.ingest import IngestOutput


@task(retries=1, retry_delay_seconds=[5])
def align_sessions(
    run: RunContext, spec: DatasetSpec, raw_uri: str, ingested: IngestOutput, cfg: AlignConfig
) -> AlignResult:
    """Estimate offsets and drift per session and stream, then window every session."""
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
    put_frame(store, run.key("quarantine", "align.parquet"), result.quarantine)
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
    return result
