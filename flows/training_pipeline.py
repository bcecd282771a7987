"""The training pipeline: spec → ingest → align → validate → shard → train → evaluate → register.

Run it with `modalops run --config configs/demo.yaml [--set key.sub=value ...]`, or `make demo`.
Any dataset runs through it once its recordings are declared in a dataset spec
(docs/bring-your-own-data.md).
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from modalops.config import PipelineConfig
from modalops.pipeline_plan import lineage, model_plan, pipeline_summary
from modalops.runs import new_run
from tasks.align import align_sessions
from tasks.dataset import read_dataset_spec
from tasks.evaluate import evaluate_classifiers
from tasks.ingest import ingest_recordings
from tasks.register import register_model
from tasks.shard import write_dataset_shards
from tasks.train import train_classifier
from tasks.validate import load_reference_stats, validate_samples


@flow(name="training_pipeline", log_prints=True, validate_parameters=True)
def training_pipeline(cfg: PipelineConfig = PipelineConfig()) -> dict:  # noqa: B008
    """Train the fused multimodal model and one baseline per stream; register the fused one."""
    run = new_run(cfg.store, flow_run_id=flow_run.id)

    # ---- dataset spec ------------------------------------------------------------------------
    spec = read_dataset_spec(run, cfg)

    # ---- ingest ------------------------------------------------------------------------------
    ingested = ingest_recordings(run, spec, cfg.ingest)

    # ---- align -------------------------------------------------------------------------------
    aligned = align_sessions(run, spec, cfg.ingest.raw_uri, ingested, cfg.align)

    # ---- validate ----------------------------------------------------------------------------
    reference = load_reference_stats(run, cfg.registry)
    verdict = validate_samples(
        run, spec, ingested, aligned, cfg.validation, cfg.registry, reference
    )

    # ---- shard -------------------------------------------------------------------------------
    manifest = write_dataset_shards(
        run,
        spec,
        aligned,
        verdict,
        cfg.shard,
        cfg.validation,
        lineage(cfg, spec),
        cfg.align.window_s,
    )

    # ---- train -------------------------------------------------------------------------------
    trained = [
        train_classifier(run, manifest, cfg.train, model_id, streams)
        for model_id, streams in model_plan(spec, cfg.train)
    ]

    # ---- evaluate ----------------------------------------------------------------------------
    report = evaluate_classifiers(run, manifest, trained, cfg.evaluate)

    # ---- register ----------------------------------------------------------------------------
    registered = register_model(run, cfg, manifest, trained, report)

    return pipeline_summary(run, manifest, verdict, report, registered)
