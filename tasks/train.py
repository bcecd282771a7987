"""Train task: one Lightning run (fused model or a unimodal baseline) on the shards."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import get_run_logger, task

from modalops.config.train import TrainConfig
from modalops.pipeline_plan import model_label
from modalops.register import dataset_input_of
from modalops.register.tracking import (
    TrackingContext,
    end_model_run,
    log_dataset_input,
    log_text,
    start_model_run,
)
from modalops.runs import RunContext
from modalops.shard import DatasetManifest
from modalops.train import FUSED_ID
from modalops.train.training import TrainResult, balance_report, find_trained, train_model
from tasks.artifacts import frame_markdown, publish_markdown


def train_run_name() -> str:
    """`train fused`, `train baseline:audio`: the task run says which model it trains, where
    Prefect's default said `train_classifier-cc1` (issue 24)."""
    from prefect.runtime import task_run

    params = task_run.parameters
    return f"train {model_label(params['model_id'], list(params['streams']))}"


@task(retries=1, retry_delay_seconds=[10], task_run_name=train_run_name)
def train_classifier(
    run: RunContext,
    manifest: DatasetManifest,
    cfg: TrainConfig,
    model_id: str,
    streams: list[str],
    tracking: TrackingContext,
) -> TrainResult:
    """Train `model_id` on `streams` in its own nested MLflow run (params, dataset input,
    per-epoch curves); its checkpoint goes to the object store. A checkpoint already trained
    on the same dataset version, streams and config is reused (cache hit, no training). A retry
    after a crash (or a kill of the training process) resumes from the last resume checkpoint
    in the store instead of starting over."""
    log = get_run_logger()
    if model_id == FUSED_ID:
        # what the balancing choice does to the training distribution, shown once per run
        table = frame_markdown(balance_report(manifest, cfg))
        run.store().put_text(run.key("training", "balancing.md"), table)
        log_text(tracking, table, "training/balancing.md")
        publish_markdown(
            "training-balancing",
            f"# Balancing `{cfg.balancing}`\n\nTrain split before/after weighting:\n\n{table}",
            "Class or subgroup distribution before and after balancing",
        )
    child = start_model_run(
        tracking,
        model_id,
        streams,
        cfg.model_dump(mode="json"),
        tags={"dataset_version": manifest.version},
    )
    log_dataset_input(tracking, dataset_input_of(manifest, manifest.dataset_spec()), [child])
    # our own content-addressed lookup, not Prefect's cache: it survives a fresh process and a
    # new Prefect server, and the child run still records which run trained the weights
    cached = find_trained(run.store(), manifest, cfg, model_id, streams)
    if cached is not None:
        cached.mlflow_run_id = child
        tracking.client().set_tag(child, "modalops.cache_hit", "true")
        tracking.client().set_tag(child, "modalops.trained_in_run", cached.trained_in_run or "")
        end_model_run(tracking, child, cached.metrics)
        log.info(
            "cache hit: %s on %s already trained for dataset %s (%s, trained in MLflow run %s); "
            "not training again",
            model_id,
            streams,
            manifest.version,
            cached.checkpoint_key,
            cached.trained_in_run,
        )
        return cached
    try:
        with tempfile.TemporaryDirectory(prefix=f"modalops-train-{model_id}-") as tmp:
            result = train_model(
                run.store(),
                manifest,
                cfg,
                model_id,
                streams,
                Path(tmp),
                endpoint_url=run.endpoint_url,
                tracking={"tracking_uri": tracking.tracking_uri, "run_id": child},
            )
    except BaseException:
        # a retry starts a fresh child run; this one stays on record as failed
        end_model_run(tracking, child, status="FAILED")
        raise
    if result.resumed_from_step:
        tracking.client().set_tag(
            child, "modalops.resumed_from_step", str(result.resumed_from_step)
        )
        log.info(
            "resumed %s from its checkpoint at optimizer step %d instead of starting over",
            model_id,
            result.resumed_from_step,
        )
    end_model_run(tracking, child, result.metrics)
    log.info("trained %s on %s (MLflow run %s): %s", model_id, streams, child, result.metrics)
    return result
