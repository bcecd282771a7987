"""The training pipeline: spec → ingest → align → validate → shard → train → evaluate → register.

Run it with `modalops run --config configs/demo.yaml [--set key.sub=value ...]`, or `make demo`.
Any dataset runs through it once its recordings are declared in a dataset spec
(docs/bring-your-own-data.md).
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from flows.data_stages import run_data_stages_on_dask
from modalops.config.forms import TrainingForm
from modalops.pipeline_plan import lineage, model_plan, pipeline_summary
from modalops.run_summaries import training_summary_markdown
from modalops.runs import new_run
from tasks.align import align_sessions
from tasks.artifacts import publish_flow_summary
from tasks.dataset import read_dataset_spec
from tasks.evaluate import evaluate_classifiers
from tasks.ingest import ingest_recordings
from tasks.register import register_model
from tasks.shard import write_dataset_shards
from tasks.tracking import end_tracking, fail_tracking, log_dataset_version, start_tracking
from tasks.train import train_classifier
from tasks.validate import load_reference_stats, validate_samples


@flow(
    name="training_pipeline",
    log_prints=True,
    validate_parameters=True,
    # a failed, crashed or cancelled run closes its MLflow parent run as such
    on_failure=[fail_tracking],
    on_crashed=[fail_tracking],
    on_cancellation=[fail_tracking],
)
def training_pipeline(cfg: TrainingForm) -> dict:
    """Train the fused multimodal model and one baseline per stream; register the fused one.

    MLflow gets one parent run per pipeline run (config, dataset input, stage metrics and
    artifacts) with one nested run per trained model (its curves; the fused one holds the
    registered model).

    Args:
        cfg: the run's settings (a PipelineConfig is taken as it is; modalops.config.forms)
    """
    cfg = cfg.pipeline_config()
    run = new_run(cfg.store, flow_run_id=flow_run.id)

    # ---- tracking ----------------------------------------------------------------------------
    tracking = start_tracking(run, cfg)

    # ---- dataset spec ------------------------------------------------------------------------
    spec = read_dataset_spec(run, cfg)

    if cfg.dask.enabled:
        # ---- ingest, align, validation evidence: batches of sessions on Dask workers ---------
        ingested, aligned, evidence = run_data_stages_on_dask(run, spec, cfg, tracking)
    else:
        # ---- ingest --------------------------------------------------------------------------
        ingested = ingest_recordings(run, spec, cfg.ingest, tracking)

        # ---- align ---------------------------------------------------------------------------
        aligned = align_sessions(run, spec, cfg.ingest.raw_uri, ingested, cfg.align, tracking)
        evidence = None  # gathered by the gate itself, a part at a time

    # ---- validate ----------------------------------------------------------------------------
    reference = load_reference_stats(run, cfg.registry)
    verdict = validate_samples(
        run, spec, ingested, aligned, cfg.validation, tracking, reference, evidence
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
        tracking,
    )
    log_dataset_version(tracking, manifest)

    # ---- train -------------------------------------------------------------------------------
    trained = [
        train_classifier(run, manifest, cfg.train, model_id, streams, tracking)
        for model_id, streams in model_plan(spec, cfg.train)
    ]

    # ---- evaluate ----------------------------------------------------------------------------
    report = evaluate_classifiers(run, manifest, trained, cfg.evaluate, tracking, cfg.ingest)

    # ---- register ----------------------------------------------------------------------------
    registered = register_model(run, cfg, manifest, trained, report, tracking)

    summary = pipeline_summary(run, manifest, verdict, report, registered, tracking)
    end_tracking(tracking, summary)
    publish_flow_summary(
        "training-summary", training_summary_markdown(summary), "The pipeline run in one table"
    )
    return summary
