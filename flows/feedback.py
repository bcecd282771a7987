"""Feedback: completed reviews in Label Studio → versioned label corrections next to the raw
data → used by the next training run (its dataset version changes; MLflow counts them).

Run it with `modalops feedback --config configs/demo.yaml`, or from the Prefect UI (deployment
`feedback-<config name>`, docs/ui.md). It reads the same config file as training and batch inference.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from modalops.config.forms import FeedbackForm
from modalops.infer import batch_config
from modalops.run_summaries import feedback_summary_markdown
from modalops.runs import new_run
from tasks.artifacts import publish_flow_summary
from tasks.dataset import read_dataset_spec
from tasks.feedback import pull_reviews, record_corrections


@flow(name="feedback", log_prints=True, validate_parameters=True)
def feedback(cfg: FeedbackForm) -> dict:
    """Pull completed reviews of the model's project and record them as label corrections.

    Args:
        cfg: the run's settings (a PipelineConfig is taken as it is; modalops.config.forms)
    """
    cfg = batch_config(cfg.pipeline_config())
    run = new_run(cfg.store, flow_run_id=flow_run.id)
    spec = read_dataset_spec(run, cfg)
    reviews = pull_reviews(run, spec, cfg)
    recorded = record_corrections(run, spec, cfg, reviews)
    publish_flow_summary(
        "feedback-summary",
        feedback_summary_markdown(cfg.registry.model_name, recorded),
        "Reviews pulled and corrections recorded",
    )
    return {"run_key": run.run_key, **recorded}
