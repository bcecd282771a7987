"""Shard task: accepted samples → WebDataset tar shards split by session, content-versioned."""

from __future__ import annotations

import time

from prefect import get_run_logger, task

from modalops.align import AlignResult
from modalops.config.pipeline import ShardConfig
from modalops.config.validate import ValidateConfig
from modalops.dataset.spec import DatasetSpec
from modalops.register.tracking import TrackingContext, log_metrics
from modalops.runs import RunContext, put_frame, reference_stats_key
from modalops.shard import DatasetManifest, write_shards
from modalops.validate import ValidationResult, gate_splits, split_label_rejections
from tasks.artifacts import publish_markdown


@task(retries=2, retry_delay_seconds=[2, 10])
def write_dataset_shards(
    run: RunContext,
    spec: DatasetSpec,
    aligned: AlignResult,
    verdict: ValidationResult,
    cfg: ShardConfig,
    validation: ValidateConfig,
    lineage: dict,
    window_s: float,
    tracking: TrackingContext | None = None,
) -> DatasetManifest:
    """Write train/val/test shards and the manifest (skipped when the version already exists),
    then gate on split leaks before anything trains on them."""
    log = get_run_logger()
    store = run.store()
    started = time.perf_counter()
    outcome: dict = {}
    everywhere, train_only = split_label_rejections(verdict.rejected, validation)
    manifest = write_shards(
        store,
        spec,
        aligned.part_keys,
        everywhere,
        cfg,
        extra=lineage,
        train_only=train_only,
        window_s=window_s,
        outcome=outcome,
    )
    if tracking is not None and not outcome.get("reused"):
        # the stage's own time (read by `modalops plan`); a reused version wrote nothing
        log_metrics(tracking, {"shard.seconds": time.perf_counter() - started})
    if not store.exists(reference_stats_key(manifest.version)):
        # kept with the version so a later run can test for drift against this dataset
        put_frame(store, reference_stats_key(manifest.version), verdict.summary)
    split_of = {sid: name for name, info in manifest.splits.items() for sid in info.sessions}
    rows = "\n".join(
        f"| {name} | {info.n_samples} | {len(info.sessions)} | {len(info.shards)} |"
        for name, info in manifest.splits.items()
    )
    log.info(
        "dataset %s: %s", manifest.version, {k: v.n_samples for k, v in manifest.splits.items()}
    )
    publish_markdown(
        "dataset-manifest",
        f"# Dataset `{manifest.version}`\n\n| split | samples | sessions | shards |\n"
        f"|---|---|---|---|\n{rows}",
        "Dataset version and splits",
    )
    # a session, subject or near-duplicate frame in two splits stops the flow here
    gate_splits(
        verdict,
        split_of,
        validation,
        on_verdict=lambda v: store.put_text(
            run.key("validation", "verdict.md"), v.table_markdown()
        ),
    )
    return manifest
