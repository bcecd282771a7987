"""Feedback: completed reviews in Label Studio → versioned label corrections next to the raw
data → used by the next training run (its dataset version changes; MLflow counts them).

Run it with `modalops feedback --config configs/demo.yaml`, or from the Prefect UI (deployment
`feedback`). It reads the same config file as training and batch inference.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from modalops.config import PipelineConfig
from modalops.infer import batch_config
from modalops.runs import new_run
from tasks.dataset import read_dataset_spec
from tasks.feedback import pull_reviews, record_corrections


@flow(name="feedback", log_prints=True, validate_parameters=True)
def feedback(cfg: PipelineConfig = PipelineConfig()) -> dict:  # noqa: B008
    """Pull completed reviews of the model's project and record them as label corrections."""
    cfg = batch_config(cfg)
    run = new_run(cfg.store, flow_run_id=flow_run.id)
    spec = read_dataset_spec(run, cfg)
    reviews = pull_reviews(run, spec, cfg)
    recorded = record_corrections(run, spec, cfg, reviews)
    return {"run_key": run.run_key, **recorded}
