"""End to end: the whole training pipeline flow against real services.

moto's S3 server on 127.0.0.1 holds the raw data and every artifact, a standalone Prefect
server orchestrates, MLflow tracks on SQLite; then a registry consumer loads the champion.
"""

from __future__ import annotations

import io

import mlflow
import numpy as np
import pandas as pd
import pytest

from flows.run_timing import stage_times
from modalops.config import load_config
from modalops.dataset.columns import SPLITS
from modalops.shard import iter_raw_samples, load_manifest
from modalops.store import open_store
from modalops_demo.generate import DemoDataConfig, generate_demo_data
from modalops_demo.names import LABELS
from tests.conftest import REPO
from tests.prefect_reads import long_figures, run_artifacts, task_run_names

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_training_pipeline_end_to_end(s3_bucket, s3_server, prefect_api, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.training_pipeline import training_pipeline

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_server.url)
    raw_uri, store_uri = f"{s3_bucket}/raw", f"{s3_bucket}/store"
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    generate_demo_data(open_store(raw_uri), DemoDataConfig(sessions=10, duration_s=30.0, seed=3))
    cfg = load_config(
        [REPO / "configs" / "ci.yaml"],
        [
            f"store.uri={store_uri}",
            f"ingest.raw_uri={raw_uri}",
            f"registry.tracking_uri={tracking_uri}",
        ],
    )

    with temporary_settings({PREFECT_API_URL: prefect_api}):
        summary = training_pipeline(cfg)

    # shards and manifest are in the bucket, split by session
    store = open_store(store_uri)
    version = summary["dataset_version"]
    keys = store.list(f"datasets/{version}")
    assert f"datasets/{version}/manifest.json" in keys
    manifest = load_manifest(store, version)
    for split in SPLITS:
        assert manifest.splits[split].shards, f"no {split} shards"
        assert all(store.exists(k) for k in manifest.splits[split].shards)
    sessions = [set(manifest.splits[s].sessions) for s in SPLITS]
    assert not (sessions[0] & sessions[1] or sessions[0] & sessions[2] or sessions[1] & sessions[2])

    # validation passed, and its artifacts were kept in the bucket
    assert summary["validation_passed"] is True
    assert any(k.endswith("verdict.md") for k in store.list("runs"))

    # MLflow: the registered version holds alias champion, its artifacts live in the bucket
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    champion = client.get_model_version_by_alias(cfg.registry.model_name, "champion")
    assert str(champion.version) == str(summary["model_version"])
    assert champion.tags.get("dataset_version") == version
    run = client.get_run(champion.run_id)
    # issue 25: skew curves (step = shift in ms) and stream loss on the parent run, plots beside
    parent = summary["mlflow_parent_run_id"]
    curve = client.get_metric_history(parent, "skew/audio/fused_macro_f1")
    assert sorted(m.step for m in curve) == [-2000, 0, 2000]  # ci.yaml's skew_s
    parent_metrics = client.get_run(parent).data.metrics
    assert {"stream_loss/audio/noise/fused_macro_f1", "skew/vibration/f1_drop_at_2s"} <= set(
        parent_metrics
    )
    plots = {a.path for a in client.list_artifacts(parent, "evaluation/plots")}
    assert {"evaluation/plots/skew_macro_f1.png", "evaluation/plots/stream_reliance.png"} <= plots
    assert run.info.artifact_uri.startswith(f"{store_uri}/"), run.info.artifact_uri
    # the dataset version carries the spec it was built from, and so does the model
    assert manifest.spec["name"] == "industrial-safety-demo"
    assert champion.tags.get("dataset_spec_digest") == manifest.spec_digest

    # the Prefect server recorded the flow run as completed
    flow_run_id = champion.tags.get("prefect_flow_run_id")
    assert flow_run_id
    with temporary_settings({PREFECT_API_URL: prefect_api}), get_client(sync_client=True) as pc:
        assert pc.read_flow_run(flow_run_id).state.is_completed()
        # ...and its task runs give the stage wall times `modalops demo` prints
        assert summary["flow_run_id"] == flow_run_id
        times = stage_times(flow_run_id)
    assert times.task_runs["train_classifier"] == len(summary["unimodal_macro_f1"]) + 1
    assert times.task_runs["validate_samples"] == 1
    assert 0 < times.share("validate_samples") < 1
    assert 0 < sum(times.task_seconds.values()) <= times.flow_seconds * 1.05
    assert "| validate_samples | 1 |" in times.table()
    # each training task run is named after its model (issue 24: `train_classifier-cc1`, ...)
    names = task_run_names(prefect_api, flow_run_id)
    baselines = [f"train baseline:{s}" for s in summary["unimodal_macro_f1"]]
    assert sorted(n for n in names if n.startswith("train ")) == sorted(["train fused", *baselines])
    # the flow run has its own summary artifact (not only its task runs'), figures rounded
    flow_level, task_level = run_artifacts(prefect_api, flow_run_id)
    assert set(flow_level) == {"training-summary"}, flow_level
    text = flow_level["training-summary"]
    assert f"| dataset version | `{version}` |" in text
    assert f"| registered | `{cfg.registry.model_name}` v{summary['model_version']} |" in text
    assert "| fused |" in text
    assert {"align-summary", "validation-verdict", "dataset-manifest"} <= set(task_level)
    for key, markdown in {**flow_level, **task_level}.items():
        assert not long_figures(markdown), (key, long_figures(markdown))
    assert "## Not passed" in task_level["validation-verdict"]

    # a registry consumer predicts valid classes for held-out samples
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{cfg.registry.model_name}@champion")
    held_out = [
        s for _, s in zip(range(12), iter_raw_samples(store, manifest, "test"), strict=False)
    ]
    streams = [s["streams"] for s in held_out]
    frame = pd.DataFrame(
        {
            "camera": [s["camera"] for s in streams],  # JPEG bytes
            "audio": [s["audio"] for s in streams],  # WAV bytes
            "vibration": [np.load(io.BytesIO(s["vibration"])).tolist() for s in streams],
            "notes": [s["notes"] or "" for s in streams],
        }
    )
    out = model.predict(frame)
    assert len(out) == len(held_out)
    assert set(out["label"]) <= set(LABELS)
    assert ((out["probability"] > 0) & (out["probability"] <= 1)).all()
