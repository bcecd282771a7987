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
    log_files,
    log_metrics,
    log_store_files,
    log_tags,
    log_text,
    validation_metrics,
)
from modalops.run_summaries import verdict_markdown
from modalops.runs import RunContext, get_frame, put_frame, reference_stats_key
from modalops.validate import ValidationResult, raise_for_gate, validate_dataset
from modalops.validate.docs_page import write_single_page
from modalops.validate.evidence import (
    SampleEvidence,
    evidence_from_parts,
    merge_evidence,
    parts_window_length,
)
from modalops.validate.label_check import REASON as LABEL_REASON
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
    evidence: SampleEvidence | None = None,
) -> ValidationResult:
    """Run the suites, keep the Data Docs, and stop the flow when a `fail` check fails.

    Verdict, Data Docs and `validation.*` metrics go to the MLflow parent run first, so a run
    stopped here shows why (the flow's failure hook then closes that run FAILED). `evidence`:
    the per-sample statistics and label features when Dask workers gathered them
    (`sample_evidence_batch`), else they are gathered here a part at a time; the gate itself
    needs the whole dataset's evidence, so it runs here, in one task."""
    log = get_run_logger()
    store = run.store()
    started = time.perf_counter()
    if evidence is None:
        evidence = evidence_from_parts(store, aligned.part_keys, spec, cfg)
    with tempfile.TemporaryDirectory(prefix="modalops-gx-") as tmp:
        result = validate_dataset(
            spec,
            ingested.catalog,
            None,
            cfg,
            align_report=aligned.report,
            reference_stats=reference_stats,
            docs_dir=Path(tmp) / "data_docs",
            evidence=evidence,
        )
        seconds = time.perf_counter() - started
        if result.data_docs_dir is not None and Path(result.data_docs_dir).exists():
            store.put_dir(run.key("validation", "data_docs"), result.data_docs_dir)
            log_dir(tracking, result.data_docs_dir, "validation/data_docs")
            # the same results in one self-contained page MLflow's artifact viewer renders
            page = write_single_page(result.data_docs_dir, Path(tmp) / "data_docs.html")
            log_files(tracking, {"validation/data_docs.html": page})
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
        f"# Validation {verdict}\n\nbad-sample fraction: {100 * result.bad_fraction:.2f}%\n\n"
        + verdict_markdown(result.checks),
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
    """The samples' window length over every part, which each batch's evidence needs to match
    that of the whole dataset."""
    return parts_window_length(run.store(), aligned.part_keys)


@task(retries=1, retry_delay_seconds=[5])
def sample_evidence_batch(
    run: RunContext, spec: DatasetSpec, part_keys: list[str], cfg: ValidateConfig, window_s: float
) -> SampleEvidence:
    """Decoded per-sample statistics and label features of a few aligned parts (on a Dask
    worker), one part in memory at a time."""
    return evidence_from_parts(run.store(), part_keys, spec, cfg, window_s=window_s)


@task
def merge_sample_evidence(parts: list[SampleEvidence]) -> SampleEvidence:
    """The batches' evidence in part order: what `evidence_from_parts` gives for all parts."""
    return merge_evidence(parts)
