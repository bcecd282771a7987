"""Ingest task: scan the raw layout into a Parquet catalog, quarantining unreadable files."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
from prefect import get_run_logger, task

from modalops import quarantine as qmod
from modalops.config.data import IngestConfig
from modalops.dataset.layout import read_sessions
from modalops.dataset.spec import DatasetSpec
from modalops.ingest import IngestResult
from modalops.ingest import ingest_recordings as ingest_core
from modalops.ingest.recordings import unlisted_folders
from modalops.register.tracking import (
    TrackingContext,
    ingest_metrics,
    log_metrics,
    log_store_files,
    log_tags,
    log_text,
)
from modalops.runs import RunContext, put_frame
from modalops.store import open_store
from tasks.artifacts import frame_markdown, publish_markdown
from tasks.dask import batches


@dataclass
class IngestOutput:
    catalog: pd.DataFrame
    quarantine: pd.DataFrame
    catalog_key: str
    quarantine_key: str


@task(retries=2, retry_delay_seconds=[2, 10])
def ingest_recordings(
    run: RunContext, spec: DatasetSpec, cfg: IngestConfig, tracking: TrackingContext
) -> IngestOutput:
    """Catalog every session's streams with content hashes; bad files go to quarantine.
    The counts go to the MLflow parent run as `ingest.*`, the tables under `ingest/`."""
    raw = open_store(cfg.raw_uri, endpoint_url=run.endpoint_url)
    started = time.perf_counter()
    result = ingest_core(raw, spec, cfg)
    return record_ingest(run, spec, result, tracking, time.perf_counter() - started)


@task
def list_session_batches(
    run: RunContext, spec: DatasetSpec, cfg: IngestConfig, batch_sessions: int
) -> list[list[str]]:
    """The sessions ingest would scan (table order, at most cfg.max_sessions), in batches."""
    raw = open_store(cfg.raw_uri, endpoint_url=run.endpoint_url)
    ids = read_sessions(raw, spec)[spec.sessions.id_column].astype(str).tolist()
    if cfg.max_sessions is not None:
        ids = ids[: cfg.max_sessions]
    return batches(ids, batch_sessions)


@task(retries=2, retry_delay_seconds=[2, 10])
def ingest_batch(
    run: RunContext, spec: DatasetSpec, cfg: IngestConfig, sessions: list[str]
) -> tuple[IngestResult, float]:
    """Catalog one batch of sessions (on a Dask worker); returns it with its seconds."""
    raw = open_store(cfg.raw_uri, endpoint_url=run.endpoint_url)
    started = time.perf_counter()
    result = ingest_core(raw, spec, cfg.model_copy(update={"max_sessions": None}), sessions)
    return result, time.perf_counter() - started


@task
def merge_ingest(
    run: RunContext,
    spec: DatasetSpec,
    cfg: IngestConfig,
    tracking: TrackingContext,
    parts: list[tuple[IngestResult, float]],
) -> IngestOutput:
    """One catalog and quarantine from the batches, as a single-process ingest writes them."""
    catalog = pd.concat([p.catalog for p, _ in parts], ignore_index=True)
    quarantine = pd.concat([p.quarantine for p, _ in parts], ignore_index=True)
    if cfg.max_sessions is None:
        raw = open_store(cfg.raw_uri, endpoint_url=run.endpoint_url)
        listed = set(read_sessions(raw, spec)[spec.sessions.id_column].astype(str))
        extra = qmod.to_frame(unlisted_folders(raw, spec, listed))
        if len(extra):
            quarantine = pd.concat([quarantine, extra], ignore_index=True)
    result = IngestResult(catalog=catalog, quarantine=quarantine)
    return record_ingest(run, spec, result, tracking, sum(s for _, s in parts))


def record_ingest(
    run: RunContext,
    spec: DatasetSpec,
    result: IngestResult,
    tracking: TrackingContext,
    seconds: float,
) -> IngestOutput:
    """Write the catalog and quarantine, log them, publish the summary (inside a task)."""
    log = get_run_logger()
    store = run.store()
    catalog_key, quarantine_key = (
        run.key("catalog.parquet"),
        run.key("quarantine", "ingest.parquet"),
    )
    put_frame(store, catalog_key, result.catalog)
    put_frame(store, quarantine_key, result.quarantine)
    n_sessions = result.catalog["session_id"].nunique()
    log.info(
        "ingested %d sessions, %d streams; %d items quarantined",
        n_sessions,
        len(result.catalog),
        len(result.quarantine),
    )
    for row in result.quarantine.head(20).itertuples():
        log.warning("quarantined %s: %s", row.uri, row.reason)
    summary = (
        f"# Ingest\n\n{n_sessions} sessions, {len(result.catalog)} streams, "
        f"{len(result.quarantine)} quarantined.\n\n## Quarantine\n\n"
        + frame_markdown(result.quarantine[["session_id", "stream", "uri", "reason"]])
    )
    publish_markdown("ingest-summary", summary, "Catalog and quarantine of the ingest stage")
    log_tags(tracking, {"dataset_name": spec.name, "dataset_spec_digest": spec.digest()})
    # the stage's own time: `modalops plan` reads it when Prefect's task times are out of reach
    log_metrics(
        tracking, {**ingest_metrics(result.catalog, result.quarantine), "ingest.seconds": seconds}
    )
    log_text(tracking, summary, "ingest/summary.md")
    log_text(tracking, spec.to_yaml(), "ingest/dataset.yaml")
    log_store_files(
        tracking,
        store,
        {"ingest/catalog.parquet": catalog_key, "ingest/quarantine.parquet": quarantine_key},
    )
    return IngestOutput(result.catalog, result.quarantine, catalog_key, quarantine_key)
