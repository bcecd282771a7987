"""Batch inference tasks: predict with the registered model, then report what was routed."""

from __future__ import annotations

from prefect import get_run_logger, task

from modalops.config.pipeline import PipelineConfig
from modalops.dataset.spec import DatasetSpec
from modalops.infer import BatchResult, load_registered, run_batch
from modalops.infer.report import log_batch_run, summary_markdown
from modalops.register.registry import experiment_artifact_location
from modalops.runs import RunContext
from modalops.store import open_store
from tasks.artifacts import publish_markdown


@task(retries=1, retry_delay_seconds=[10])
def predict_batch(run: RunContext, spec: DatasetSpec, cfg: PipelineConfig) -> BatchResult:
    """Load the model by alias (or version), window the batch as training did, predict, route."""
    log = get_run_logger()
    served = load_registered(
        cfg.registry.tracking_uri,
        cfg.registry.model_name,
        cfg.inference.alias,
        cfg.inference.model_version,
    )
    raw = open_store(cfg.ingest.raw_uri, endpoint_url=run.endpoint_url)
    result = run_batch(raw, run.store(), spec, cfg, served, run.prefix, run.run_key)
    s = result.summary
    log.info(
        "%s: %d windows from %d sessions, %d routed to review (%.1f%%), %.1f windows/s",
        served.label, s["windows"], s["sessions_predicted"], s["routed"],
        100 * (s["routed_share"] or 0), s["windows_per_s_model"] or 0,
    )  # fmt: skip
    for row in result.quarantine.head(20).itertuples():
        log.warning("quarantined %s/%s: %s", row.session_id, row.stream, row.reason)
    return result


@task(retries=2, retry_delay_seconds=[5, 15])
def report_batch(run: RunContext, cfg: PipelineConfig, result: BatchResult) -> str:
    """The summary as a Prefect artifact and as an MLflow run linked to the model version."""
    s = result.summary
    markdown = summary_markdown(s, result.keys, run.store_uri)
    publish_markdown("batch-inference", markdown, "Batch inference: routing, latency and cost")
    return log_batch_run(
        cfg.registry.tracking_uri,
        cfg.registry.experiment,
        result.model,
        s,
        markdown,
        {"modalops_run": run.run_key, "prefect_flow_run_id": run.flow_run_id},
        artifact_location=experiment_artifact_location(
            cfg.registry.artifact_location, cfg.store.uri
        ),
    )
