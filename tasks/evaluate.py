"""Evaluate task: fused vs unimodal models on the held-out test split."""

from __future__ import annotations

from prefect import get_run_logger, task

from modalops.config.evaluate import EvaluateConfig
from modalops.evaluate import EvaluationReport, evaluate_models
from modalops.runs import RunContext
from modalops.shard import DatasetManifest
from modalops.train.training import TrainResult
from tasks.artifacts import publish_markdown


@task
def evaluate_classifiers(
    run: RunContext, manifest: DatasetManifest, trained: list[TrainResult], cfg: EvaluateConfig
) -> EvaluationReport:
    """Score every model on the test split; write the report to the store."""
    log = get_run_logger()
    report = evaluate_models(run.store(), manifest, trained, cfg, out_prefix=run.key("evaluation"))
    headline = report.headline_markdown()
    log.info("evaluation\n%s", headline)
    publish_markdown("evaluation-headline", f"# Evaluation\n\n{headline}", "Fused vs unimodal")
    return report
