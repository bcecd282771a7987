"""The data stages over batches of sessions on Dask workers (`dask.enabled`, docs/scale.md).

Ingest and align run per batch of `dask.batch_sessions` sessions, the validation evidence
(statistics and label features) per batch of aligned parts; each fan-out is merged in one task
into what the single-process stage returns. The validation gate itself needs the whole dataset and stays one task in the parent flow.
"""

from __future__ import annotations

import math

from prefect import flow, unmapped

from modalops.align import AlignResult
from modalops.config import PipelineConfig
from modalops.dataset.spec import DatasetSpec
from modalops.register.tracking import TrackingContext
from modalops.runs import RunContext
from modalops.validate.evidence import SampleEvidence
from tasks.align import align_batch, merge_alignment
from tasks.dask import batches, dask_task_runner
from tasks.ingest import IngestOutput, ingest_batch, list_session_batches, merge_ingest
from tasks.validate import aligned_window_length, merge_sample_evidence, sample_evidence_batch


@flow(name="data_stages_on_dask", log_prints=True)
def data_stages_on_dask(
    run: RunContext, spec: DatasetSpec, cfg: PipelineConfig, tracking: TrackingContext
) -> tuple[IngestOutput, AlignResult, SampleEvidence]:
    """Ingest, align and the validation evidence, fanned out over the flow's Dask cluster."""
    # ---- ingest ------------------------------------------------------------------------------
    sessions = list_session_batches(run, spec, cfg.ingest, cfg.dask.batch_sessions)
    ingest_parts = ingest_batch.map(unmapped(run), unmapped(spec), unmapped(cfg.ingest), sessions)
    ingested = merge_ingest(run, spec, cfg.ingest, tracking, ingest_parts)

    # ---- align -------------------------------------------------------------------------------
    align_parts = align_batch.map(
        unmapped(run),
        unmapped(spec),
        unmapped(cfg.ingest.raw_uri),
        unmapped(ingested),
        unmapped(cfg.align),
        sessions,
        list(range(len(sessions))),
    )
    aligned = merge_alignment(run, cfg.align, tracking, align_parts)

    # ---- validation statistics -----------------------------------------------------------------
    window_s = aligned_window_length(run, aligned)
    # one task per worker: each Prefect task run costs ~1 s of orchestration on a busy machine
    per_task = max(1, math.ceil(len(aligned.part_keys) / cfg.dask.workers))
    pieces = sample_evidence_batch.map(
        unmapped(run),
        unmapped(spec),
        batches(aligned.part_keys, per_task),
        unmapped(cfg.validation),
        unmapped(window_s),
    )
    evidence = merge_sample_evidence(pieces)
    return ingested, aligned, evidence


def run_data_stages_on_dask(
    run: RunContext, spec: DatasetSpec, cfg: PipelineConfig, tracking: TrackingContext
) -> tuple[IngestOutput, AlignResult, SampleEvidence]:
    """The subflow on a DaskTaskRunner for `cfg.dask` (a local cluster unless `dask.address`)."""
    runner = dask_task_runner(cfg.dask)
    return data_stages_on_dask.with_options(task_runner=runner)(run, spec, cfg, tracking)
