"""Shard task: accepted samples → WebDataset tar shards split by session, content-versioned."""

from __future__ import annotations

from modalops.align import AlignResult
from modalops.shards import DatasetManifest, write_shards
from modalops.validation import ValidationResult, summarize_for_reference
from prefect import get_run_logger, task

from modalops.config.pipeline import ShardConfig
from modalops.runs import RunContext, put_frame, reference_stats_key
from tasks.artifacts import publish_markdown


@task(retries=2, retry_delay_seconds=[2, 10])
def write_dataset_shards(
    run: RunContext,
    aligned: AlignResult,
    verdict: ValidationResult,
    cfg: ShardConfig,
    lineage: dict,
) -> DatasetManifest:
    """Write train/val/test shards and the manifest (skipped when the version already exists)."""
    log = get_run_logger()
    store = run.store()
    manifest = write_shards(store, aligned.part_keys, verdict.rejected, cfg, extra=lineage)
    if not store.exists(reference_stats_key(manifest.version)):
        # kept with the version so a later run can test for drift against this dataset
        put_frame(
            store, reference_stats_key(manifest.version), summarize_for_reference(verdict.stats)
        )
    rows = "\n".join(
        f"| {name} | {info.n_samples} | {len(info.sessions)} | {len(info.shards)} |"
        for name, info in manifest.splits.items()
    )
    log.info(
        "dataset version %s: %s",
        manifest.version,
        {k: v.n_samples for k, v in manifest.splits.items()},
    )
    publish_markdown(
        "dataset-manifest",
        f"# Dataset `{manifest.version}`\n\n| split | samples | sessions | shards |\n|---|---|---|---|\n{rows}",
        "Dataset version and splits",
    )
    return manifest
