"""Train task: one Lightning run (fused model or a unimodal baseline) on the shards."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import get_run_logger, task

from modalops.config.train import TrainConfig
from modalops.runs import RunContext
from modalops.shards import DatasetManifest
from modalops.training import TrainResult, train_model


@task(retries=1, retry_delay_seconds=[10])
def train_classifier(
    run: RunContext,
    manifest: DatasetManifest,
    cfg: TrainConfig,
    model_id: str,
    modalities: list[str],
) -> TrainResult:
    """Train `model_id` on `modalities`; its checkpoint goes to the object store."""
    log = get_run_logger()
    with tempfile.TemporaryDirectory(prefix=f"modalops-train-{model_id}-") as tmp:
        result = train_model(
            run.store(),
            manifest,
            cfg,
            model_id,
            modalities,
            Path(tmp),
            endpoint_url=run.endpoint_url,
        )
    log.info("trained %s on %s: %s", model_id, modalities, result.metrics)
    return result
