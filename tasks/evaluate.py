"""Evaluate task: fused vs unimodal models on the held-out test split."""

from __future__ import annotations

from prefect import get_run_logger, task

from modalops.config.data import IngestConfig
from modalops.config.evaluate import EvaluateConfig
from modalops.evaluate import EvaluationReport, headline_metrics
from modalops.evaluate.evaluation import evaluate_or_reuse
from modalops.evaluate.stress import SkewInputs, stress_metrics
from modalops.register.tracking import TrackingContext, log_curves, log_metrics, log_store_files
from modalops.runs import RunContext
from modalops.shard import DatasetManifest
from modalops.store import open_store
from modalops.train.training import TrainResult
from tasks.artifacts import publish_markdown


@task
def evaluate_classifiers(
    run: RunContext,
    manifest: DatasetManifest,
    trained: list[TrainResult],
    cfg: EvaluateConfig,
    tracking: TrackingContext,
    ingest: IngestConfig | None = None,
) -> EvaluationReport:
    """Score every model on the test split; write the report to the store and to MLflow
    (`eval.*` and `evaluation/` on the parent run, `test.*` on each model's run). The same
    checkpoints evaluated with the same config before: that report is reused (cache hit).
    With `ingest` the raw recordings are re-cut for the skew curves (`stress.*`, `skew/...`)."""
    log = get_run_logger()
    raw = None
    if ingest is not None:
        raw = SkewInputs(open_store(ingest.raw_uri, endpoint_url=run.endpoint_url), ingest)
    report, reused = evaluate_or_reuse(
        run.store(), manifest, trained, cfg, out_prefix=run.key("evaluation"), raw=raw
    )
    if reused:
        log.info(
            "cache hit: evaluation of %s on dataset %s reused (same checkpoints, same config)",
            [t.model_id for t in trained],
            manifest.version,
        )
    headline = report.headline_markdown()
    log.info("evaluation\n%s", headline)
    publish_markdown("evaluation-headline", f"# Evaluation\n\n{headline}", "Fused vs unimodal")
    log_metrics(tracking, headline_metrics(report))
    log_curves(tracking, stress_metrics(report.stress))
    for skip in report.stress.skipped:
        log.info("stress test %(test)s skipped for %(stream)s: %(reason)s", skip)
    log.info("skew pass: %.1f s, %d rows", report.stress.seconds, len(report.stress.skew))
    runs = {t.model_id: t.mlflow_run_id for t in trained if t.mlflow_run_id}
    for row in report.models.to_dict("records"):
        if row["model_id"] in runs:
            test = {f"test.{k}": row[k] for k in ("macro_f1", "accuracy", "ece") if k in row}
            log_metrics(tracking, test, runs[row["model_id"]])
    prefix = run.key("evaluation") + "/"
    files = {
        f"evaluation/{key[len(prefix) :]}": key
        for key in report.artifacts.values()
        if key.startswith(prefix)
    }
    log_store_files(tracking, run.store(), files)
    return report
