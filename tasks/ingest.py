"""Ingest task: scan the raw layout into a Parquet catalog, quarantining unreadable files."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import get_run_logger, task

from modalops.config.data import IngestConfig
from modalops.dataset.spec import DatasetSpec
from modalops.ingest import ingest_recordings as ingest_core
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
    log = get_run_logger()
    raw = open_store(cfg.raw_uri, endpoint_url=run.endpoint_url)
    result = ingest_core(raw, spec, cfg)
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
    log_metrics(tracking, ingest_metrics(result.catalog, result.quarantine))
    log_text(tracking, summary, "ingest/summary.md")
    log_text(tracking, spec.to_yaml(), "ingest/dataset.yaml")
    log_store_files(
        tracking,
        store,
        {"ingest/catalog.parquet": catalog_key, "ingest/quarantine.parquet": quarantine_key},
    )
    return IngestOutput(result.catalog, result.quarantine, catalog_key, quarantine_key)
