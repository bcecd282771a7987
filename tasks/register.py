"""Register task: log the run to MLflow, register the fused model, promote it if it is better."""

from __future__ import annotations

from prefect import get_run_logger, task

from modalops.config.pipeline import PipelineConfig
from modalops.evaluate import EvaluationReport
from modalops.register import RegistrationResult, register_pipeline_model
from modalops.register.registry import bound_http_retries, tracking_errors
from modalops.register.tracking import TrackingContext, record_registration, version_tags
from modalops.runs import RunContext
from modalops.shard import DatasetManifest
from modalops.train import FUSED_ID
from modalops.train.training import TrainResult
from tasks.artifacts import publish_markdown


@task(retries=2, retry_delay_seconds=[5, 15])
def register_model(
    run: RunContext,
    cfg: PipelineConfig,
    manifest: DatasetManifest,
    trained: list[TrainResult],
    report: EvaluationReport,
    tracking: TrackingContext,
) -> RegistrationResult:
    """The pyfunc in the fused model's MLflow run, a version linked to that run; alias
    `challenger`, `champion` only if the gate passes. The decision also goes to the parent.
    Idempotent (a retry or a re-run with the same fingerprint reuses the version), so the
    retries below never register twice. A tracking server that stays down through them fails
    the task with TrackingUnavailableError (docs/faults.md)."""
    log = get_run_logger()
    bound_http_retries()  # a dead tracking server fails an attempt in ~15 s, not ~4 min per call
    fused = next((t.mlflow_run_id for t in trained if t.model_id == FUSED_ID), None)
    with tracking_errors(tracking.tracking_uri, "registration"):
        result = register_pipeline_model(
            run, cfg, manifest, trained, report, run_id=fused, tags=version_tags(tracking)
        )
        record_registration(tracking, result, report)
    if result.reused:
        log.info(
            "cache hit: %s version %s already carries this fingerprint (dataset version, fused "
            "checkpoint, config); reused it, no new run or version",
            cfg.registry.model_name,
            result.model_version,
        )
    log.info(
        "registered %s version %s, aliases %s; promoted=%s (%s)",
        cfg.registry.model_name,
        result.model_version,
        result.aliases,
        result.promoted,
        "; ".join(result.reasons),
    )
    publish_markdown(
        "registration",
        f"# Registration\n\n- model: `{cfg.registry.model_name}` version {result.model_version}\n"
        f"- aliases: {', '.join(result.aliases)}\n- promoted to champion: {result.promoted}\n"
        + "".join(f"  - {r}\n" for r in result.reasons),
        "MLflow registration and promotion decision",
    )
    return result
