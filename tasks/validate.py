"""Validate task: great-expectations gate on the catalog and the aligned samples."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task

from modalops.align import AlignResult
from modalops.config.evaluate import RegistryConfig
from modalops.config.validate import ValidateConfig
from modalops.dataset.spec import DatasetSpec
from modalops.pipeline_plan import champion_dataset_version
from modalops.register.tracking import (
    TrackingContext,
    log_dir,
    log_metrics,
    log_store_files,
    log_tags,
    log_text,
    validation_metrics,
)
from modalops.runs import RunContext, get_frame, put_frame, reference_stats_key
from modalops.validate import ValidationResult, raise_for_gate, validate_dataset
from modalops.validate.label_check import REASON as LABEL_REASON
from modalops.validate.stats import sample_stats, window_length
from tasks.artifacts import publish_markdown
from tasks.ingest import IngestOutput


@task
def validate_samples(
    run: RunContext,
    spec: DatasetSpec,
    ingested: IngestOutput,
    aligned: AlignResult,
    cfg: ValidateConfig,
    tracking: TrackingContext,
    reference_stats: pd.DataFrame | None = None,
    stats: pd.DataFrame | None = None,
) -> ValidationResult:
    """Run the suites, keep the Data Docs, and stop the flow when a `fail` check fails.

    Verdict, Data Docs and `validation.*` metrics go to the MLflow parent run first, so a run
    stopped here shows why (the flow's failure hook then closes that run FAILED). `stats`: the
    per-sample statistics when Dask workers computed them (`sample_stats_batch`); the gate
    itself needs the whole dataset, so it runs here, in one task."""
    log = get_run_logger()
    store = run.store()
    started = time.perf_counter()
    samples = pd.concat([get_frame(store, key) for key in aligned.part_keys], ignore_index=True)
    with tempfile.TemporaryDirectory(prefix="modalops-gx-") as tmp:
        result = validate_dataset(
            spec,
            ingested.catalog,
            samples,
            cfg,
            align_report=aligned.report,
            reference_stats=reference_stats,
            docs_dir=Path(tmp) / "data_docs",
            stats=stats,
        )
        seconds = time.perf_counter() - started
        if result.data_docs_dir is not None and Path(result.data_docs_dir).exists():
            store.put_dir(run.key("validation", "data_docs"), result.data_docs_dir)
            log_dir(tracking, result.data_docs_dir, "validation/data_docs")
    table = result.table_markdown()
    store.put_text(run.key("validation", "verdict.md"), table)
    put_frame(store, run.key("validation", "stats.parquet"), result.stats)
    put_frame(store, run.key("quarantine", "validate.parquet"), result.quarantine)
    verdict = "PASSED" if result.passed else "FAILED"
    log.info(
        "validation %s, bad-sample fraction %.2f%%\n%s", verdict, 100 * result.bad_fraction, table
    )
    publish_markdown(
        "validation-verdict",
        f"# Validation {verdict}\n\nbad-sample fraction: {100 * result.bad_fraction:.2f}%\n\n{table}",
        "Data validation gate",
    )
    # the stage's own time (read by `modalops plan`); Dask-computed statistics not included
    log_metrics(
        tracking, {**validation_metrics(result, LABEL_REASON), "validation.seconds": seconds}
    )
    log_tags(tracking, {"validation": "passed" if result.passed else "failed"})
    log_text(tracking, table, "validation/verdict.md")
    log_store_files(
        tracking,
        store,
        {
            "validation/stats.parquet": run.key("validation", "stats.parquet"),
            "validation/quarantine.parquet": run.key("quarantine", "validate.parquet"),
        },
    )
    if not result.passed and result.enforced:
        log.error("validation gate failed; verdict in MLflow run %s", tracking.parent_run_id)
    raise_for_gate(result)
    return result


@task
def load_reference_stats(run: RunContext, cfg: RegistryConfig) -> pd.DataFrame | None:
    """Summary statistics of the dataset behind the current champion (None on the first run)."""
    version = champion_dataset_version(cfg.tracking_uri, cfg.model_name)
    store = run.store()
    if version is None or not store.exists(reference_stats_key(version)):
        get_run_logger().info("no champion dataset to compare against: drift checks skipped")
        return None
    return get_frame(store, reference_stats_key(version))


@task
def aligned_window_length(run: RunContext, aligned: AlignResult) -> float:
    """The samples' window length (median t_end - t_start over every part), which each batch's
    statistics need to match those of the whole dataset."""
    store = run.store()
    times = [
        pd.read_parquet(store.open_read(key), columns=["t_start", "t_end"])
        for key in aligned.part_keys
    ]
    return window_length(pd.concat(times, ignore_index=True)) if times else float("nan")


@task(retries=1, retry_delay_seconds=[5])
def sample_stats_batch(
    run: RunContext, spec: DatasetSpec, part_keys: list[str], window_s: float
) -> pd.DataFrame:
    """Decoded per-sample statistics of a few aligned parts (on a Dask worker)."""
    store = run.store()
    samples = pd.concat([get_frame(store, key) for key in part_keys], ignore_index=True)
    return sample_stats(samples, spec, window_s=window_s)


@task
def merge_sample_stats(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The batches' statistics in part order: the table `sample_stats` gives for all samples."""
    return pd.concat(parts, ignore_index=True)
