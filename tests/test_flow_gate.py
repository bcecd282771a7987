"""The validation gate stops the training flow before sharding, with the verdict table."""

from __future__ import annotations

from pathlib import Path

import pytest

from modalops.config import load_config
from modalops.store import open_store
from modalops.validate import ValidationGateError
from modalops_demo.generate import DemoDataConfig, generate_demo_data

pytestmark = pytest.mark.slow


def test_bad_fraction_above_gate_stops_before_sharding(tmp_path, prefect_api):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.training_pipeline import training_pipeline

    raw = open_store(str(tmp_path / "raw"))
    # 2 of 6 sessions with a flat-lined vibration channel: a third of the samples are bad
    generate_demo_data(
        raw, DemoDataConfig(sessions=6, duration_s=16.0, seed=5, corrupt={"flatline": 0.34})
    )
    cfg = load_config(
        overrides=[
            f"ingest.raw_uri={tmp_path / 'raw'}",
            f"store.uri={tmp_path / 'store'}",
            f"registry.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            "validation.min_samples_per_subgroup=1",
        ]
    )
    with (
        temporary_settings({PREFECT_API_URL: prefect_api}),
        pytest.raises(ValidationGateError) as err,
    ):
        training_pipeline(cfg)
    message = str(err.value)
    assert "| check | observed | expected | severity | result |" in message
    assert "bad_sample_fraction" in message and "FAIL" in message
    assert "vibration_flat_channels" in message
    store = open_store(str(tmp_path / "store"))
    assert store.list("datasets") == []  # nothing was sharded
    # the rejected samples are in the quarantine manifest with their reason
    quarantine = [k for k in store.list("runs") if k.endswith("quarantine/validate.parquet")]
    assert quarantine
    from modalops.runs import get_frame

    rows = get_frame(store, quarantine[0])
    assert len(rows) > 0 and rows["reason"].str.contains("flat").any()
    # and the refused verdict is on record in MLflow: the pipeline's parent run, closed FAILED
    # by the flow's failure hook, with the verdict, the Data Docs and every stage's numbers
    import mlflow

    from modalops.register.tracking import PARENT_TAG, ROLE_TAG

    client = mlflow.MlflowClient(tracking_uri=cfg.registry.tracking_uri)
    experiment = client.get_experiment_by_name(cfg.registry.experiment).experiment_id
    every = client.search_runs([experiment])
    runs = client.search_runs([experiment], filter_string="tags.validation = 'failed'")
    assert len(every) == 1 and len(runs) == 1  # one parent, no separate failure run, no children
    parent = runs[0]
    assert parent.info.status == "FAILED" and parent.info.end_time is not None
    assert parent.data.tags[ROLE_TAG] == "pipeline" and PARENT_TAG not in parent.data.tags
    assert "validation gate failed" in parent.data.tags["modalops.outcome"]
    metrics = parent.data.metrics
    assert metrics["validation.bad_fraction"] > cfg.validation.max_bad_fraction
    assert metrics["validation.failed.bad_sample_fraction"] == 1.0
    assert metrics["validation.checks_failed"] >= 1 and metrics["validation.rejected_samples"] > 0
    assert "ingest.quarantined" in metrics and "align.streams_estimated" in metrics
    verdict = client.download_artifacts(parent.info.run_id, "validation/verdict.md", str(tmp_path))
    assert "bad_sample_fraction" in Path(verdict).read_text()
    docs = [a.path for a in client.list_artifacts(parent.info.run_id, "validation/data_docs")]
    assert "validation/data_docs/index.html" in docs
