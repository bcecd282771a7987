"""Train task: one Lightning run (fused model or a unimodal baseline) on the shards."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import get_run_logger, task

from modalops.config.train import TrainConfig
from modalops.runs import RunContext
from modalops.shard import DatasetManifest
from modalops.train.training import TrainResult, balance_report, train_model
from tasks.artifacts import frame_markdown, publish_markdown


@task(retries=1, retry_delay_seconds=[10])
def train_classifier(
    run: RunContext,
    manifest: DatasetManifest,
    cfg: TrainConfig,
    model_id: str,
    streams: list[str],
) -> TrainResult:
    """Train `model_id` on `streams`; its checkpoint goes to the object store."""
    log = get_run_logger()
    if model_id == "fused":
        # what the balancing choice does to the training distribution, shown once per run
        table = frame_markdown(balance_report(manifest, cfg))
        run.store().put_text(run.key("training", "balancing.md"), table)
        publish_markdown(
            "training-balancing",
            f"# Balancing `{cfg.balancing}`\n\nTrain split before/after weighting:\n\n{table}",
            "Class or subgroup distribution before and after balancing",
        )
    with tempfile.TemporaryDirectory(prefix=f"modalops-train-{model_id}-") as tmp:
        result = train_model(
            run.store(),
            manifest,
            cfg,
            model_id,
            streams,
            Path(tmp),
            endpoint_url=run.endpoint_url,
        )
    log.info("trained %s on %s: %s", model_id, streams, result.metrics)
    return result
