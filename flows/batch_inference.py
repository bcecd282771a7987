"""Batch inference: new recordings → ingest → align → windows → the registered model →
predictions (Parquet) → verification → human review (Label Studio, or its import JSON).

Run it with `modalops infer --config configs/demo.yaml [--set inference.sessions=all]`, or from
the Prefect UI (deployment `batch-inference-<config name>`, docs/ui.md). It reads the same config file as training.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from modalops.config.forms import BatchInferenceForm
from modalops.infer import batch_config
from modalops.run_summaries import batch_summary_markdown
from modalops.runs import new_run
from tasks.artifacts import publish_flow_summary
from tasks.dataset import read_dataset_spec
from tasks.infer import predict_batch, report_batch
from tasks.review import send_to_review


@flow(name="batch_inference", log_prints=True, validate_parameters=True)
def batch_inference(cfg: BatchInferenceForm) -> dict:
    """Predict every window of the selected sessions; route the unsure ones to review.

    Args:
        cfg: the run's settings (a PipelineConfig is taken as it is; modalops.config.forms)
    """
    cfg = batch_config(cfg.pipeline_config())
    run = new_run(cfg.store, flow_run_id=flow_run.id)
    spec = read_dataset_spec(run, cfg)
    result = predict_batch(run, spec, cfg)
    review = send_to_review(run, spec, cfg, result)
    mlflow_run_id = report_batch(run, cfg, result)
    publish_flow_summary(
        "batch-inference-summary",
        batch_summary_markdown(result.summary, review, mlflow_run_id),
        "The batch in one table: windows, routing, review, cost",
    )
    return {
        "run_key": run.run_key,
        "flow_run_id": None if run.flow_run_id is None else str(run.flow_run_id),
        "model": result.model.label,
        "predictions_key": result.keys["predictions"],
        "summary": result.summary,
        "review": review,
        "mlflow_run_id": mlflow_run_id,
    }
