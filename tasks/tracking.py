"""Tracking tasks: open and close the pipeline's MLflow parent run, and fail it with the flow."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from modalops.config.forms import TrainingForm
from modalops.config.pipeline import PipelineConfig
from modalops.register import dataset_input_of
from modalops.register.registry import (
    bound_http_retries,
    experiment_artifact_location,
    redact_uri,
    tracking_errors,
)
from modalops.register.tracking import (
    FLOW_RUN_TAG,
    RUN_KEY_TAG,
    TrackingContext,
    end_pipeline_run,
    find_pipeline_run,
    log_dataset_input,
    log_tags,
    pipeline_run_name,
    start_pipeline_run,
)
from modalops.runs import RunContext
from modalops.shard import DatasetManifest


@task
def start_tracking(run: RunContext, cfg: PipelineConfig) -> TrackingContext:
    """The pipeline's MLflow parent run: run key, flow run and pipeline as tags, config as params.

    MLflow's HTTP retries are bounded here for the whole flow (a dead tracking server fails a
    call in ~15 s, not ~4 min); one that does not answer fails the flow before any stage with
    TrackingUnavailableError naming it (docs/faults.md)."""
    bound_http_retries()
    with tracking_errors(cfg.registry.tracking_uri, "flow start"):
        ctx = start_pipeline_run(
            cfg.registry.tracking_uri,
            cfg.registry.experiment,
            run_name=pipeline_run_name(run.run_key),
            tags={RUN_KEY_TAG: run.run_key, FLOW_RUN_TAG: run.flow_run_id, "pipeline": cfg.name},
            config=cfg.model_dump(mode="json"),
            artifact_location=experiment_artifact_location(
                cfg.registry.artifact_location, cfg.store.uri
            ),
            s3_endpoint_url=cfg.store.endpoint_url,
        )
    get_run_logger().info(
        "MLflow parent run %s in experiment %s (%s)",
        ctx.parent_run_id,
        cfg.registry.experiment,
        redact_uri(ctx.tracking_uri),  # a database URI may carry its password
    )
    return ctx


@task
def log_dataset_version(tracking: TrackingContext, manifest: DatasetManifest) -> None:
    """The dataset version the models train on, as the parent run's input and tags."""
    spec = manifest.dataset_spec()
    log_dataset_input(tracking, dataset_input_of(manifest, spec))
    log_tags(tracking, {"dataset_version": manifest.version, "dataset_name": spec.name})


@task
def end_tracking(tracking: TrackingContext, summary: dict[str, Any]) -> None:
    """Close the parent run FINISHED, tagged with the registered version it produced."""
    log_tags(
        tracking,
        {
            "registered_model": summary.get("model_name"),
            "model_version": summary.get("model_version"),
            "promoted": summary.get("promoted"),
        },
    )
    end_pipeline_run(tracking, "FINISHED")


def fail_tracking(flow, flow_run, state) -> None:
    """Flow hook (failure, crash, cancellation): close the flow run's parent run FAILED/KILLED
    with the state's message. A hook gets no return values, so the run is found by its tags."""
    from prefect.logging import get_logger

    log = get_logger("modalops.tracking")
    try:
        cfg = TrainingForm.config_of(flow_run.parameters.get("cfg") or {})
        ctx = find_pipeline_run(cfg.registry.tracking_uri, cfg.registry.experiment, flow_run.id)
        if ctx is None:
            log.warning("flow run %s: no MLflow parent run to close", flow_run.id)
            return
        status = "KILLED" if state.is_cancelled() else "FAILED"
        end_pipeline_run(ctx, status, note=f"{state.name}: {state.message or ''}")
        log.info("MLflow parent run %s closed %s", ctx.parent_run_id, status)
    except Exception as exc:  # a hook must not hide the flow's own failure
        log.warning("flow run %s: could not close its MLflow parent run (%s)", flow_run.id, exc)
