"""The pipeline's MLflow record: one parent run per pipeline run, one nested run per model.

The real flow on tiny demo data, a real Prefect server and MLflow on SQLite, then the record is
read back through the MLflow client the way a user browsing the UI would find it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from modalops.config import load_config
from modalops.dataset.spec import spec_from_text
from modalops.pipeline_plan import model_plan
from modalops.register.tracking import (
    PARENT_TAG,
    ROLE_TAG,
    TrackingContext,
    align_metrics,
    finite_metrics,
    metric_key,
    pipeline_run_name,
    start_pipeline_run,
)
from modalops.shard import iter_raw_samples, load_manifest
from modalops.store import open_store
from modalops.train import FUSED_ID
from modalops_demo.generate import DemoDataConfig, generate_demo_data
from tests.conftest import REPO

# per-epoch curves: MLflow's charts give each `<group>/` prefix its own section, before the
# single-value figures (issue 24)
CURVES = ("train/loss", "val/loss", "val/macro_f1", "val/accuracy")
STAGE_FOLDERS = {"ingest", "align", "validation", "training", "evaluation", "registration"}


def _artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    out = []
    for item in client.list_artifacts(run_id, path):
        out += _artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return out


# ---- the core, without Prefect -------------------------------------------------------------------


def test_stage_summaries_become_finite_metrics_and_word_tags():
    metrics, tags = align_metrics(
        {"mode": "estimate", "streams_estimated": 7, "median_confidence": float("nan"),
         "reviewed_labels": 3, "ok": True}
    )  # fmt: skip
    assert metrics == {
        "align.streams_estimated": 7.0,
        "align.reviewed_labels": 3.0,
        "align.ok": 1.0,
    }
    assert tags == {"align.mode": "estimate"}
    assert metric_key("validation.failed.a|b (x)") == "validation.failed.a_b _x_"
    assert finite_metrics({"x": None, "y": "3", "z": 2.5}) == {"z": 2.5}


def test_parent_run_params_drop_secrets_and_sqlite_path_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ctx = start_pipeline_run(
        "sqlite:///rel.db",
        "exp",
        run_name="p",
        tags={"pipeline": "x", "none": None},
        config={"train": {"max_epochs": 2}, "store": {"secret_key": "hunter22"}},
    )
    assert ctx.tracking_uri == f"sqlite:///{tmp_path / 'rel.db'}"
    run = MlflowClient(ctx.tracking_uri).get_run(ctx.parent_run_id)
    assert run.info.status == "RUNNING" and run.info.run_name == "p"
    assert run.data.params == {"train.max_epochs": "2"}
    assert run.data.tags[ROLE_TAG] == "pipeline" and "none" not in run.data.tags


# ---- the whole flow ------------------------------------------------------------------------------


@pytest.mark.slow
def test_pipeline_leaves_one_parent_with_a_child_per_model(tmp_path, prefect_api):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.training_pipeline import training_pipeline

    raw_uri, store_uri = str(tmp_path / "raw"), str(tmp_path / "store")
    generate_demo_data(open_store(raw_uri), DemoDataConfig(sessions=10, duration_s=30.0, seed=3))
    cfg = load_config(
        [REPO / "configs" / "ci.yaml"],
        [
            f"store.uri={store_uri}",
            f"ingest.raw_uri={raw_uri}",
            f"registry.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        ],
    )
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        summary = training_pipeline(cfg)

    client = MlflowClient(cfg.registry.tracking_uri)
    experiment = client.get_experiment_by_name(cfg.registry.experiment).experiment_id
    runs = client.search_runs([experiment])
    parents = [r for r in runs if r.data.tags.get(ROLE_TAG) == "pipeline"]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    parent = parents[0]
    pid = parent.info.run_id
    assert summary["mlflow_parent_run_id"] == pid
    assert parent.info.status == "FINISHED"
    # a name that fits MLflow's runs list: `train 12-07 03:00`, the run key stays a tag
    assert parent.info.run_name == pipeline_run_name(summary["run_key"])
    assert len(parent.info.run_name) <= 20 and parent.info.run_name.startswith("train ")
    tags = parent.data.tags
    assert tags["modalops.run_key"] == summary["run_key"]
    assert tags["prefect_flow_run_id"] == summary["flow_run_id"]
    assert tags["pipeline"] == cfg.name
    assert tags["dataset_name"] == "industrial-safety-demo"
    assert tags["dataset_version"] == summary["dataset_version"]
    assert tags["validation"] == "passed" and tags["model_version"] == summary["model_version"]
    assert parent.data.params["train.max_epochs"] == str(cfg.train.max_epochs)
    assert parent.data.params["registry.model_name"] == cfg.registry.model_name

    # every run of the experiment is the parent or one of its children: one per planned model
    manifest = load_manifest(open_store(store_uri), summary["dataset_version"])
    spec = manifest.dataset_spec()
    plan = dict(model_plan(spec, cfg.train))
    children = {r.data.tags["model_id"]: r for r in runs if r.data.tags.get(PARENT_TAG) == pid}
    assert len(runs) == 1 + len(plan) and set(children) == set(plan)
    for model_id, child in children.items():  # named after the model, as the Prefect tasks
        expected = "fused" if model_id == FUSED_ID else f"baseline:{model_id}"
        assert child.info.run_name == expected
    epochs = list(range(cfg.train.max_epochs))
    for model_id, child in children.items():
        cid = child.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.params["model_id"] == model_id
        assert json.loads(child.data.params["streams"]) == plan[model_id]
        assert int(child.data.params["n_params"]) > 0
        assert child.data.params["train.hidden_dim"] == str(cfg.train.hidden_dim)
        for curve in CURVES:  # one point per epoch, at step = epoch
            steps = sorted(m.step for m in client.get_metric_history(cid, curve))
            assert steps == epochs, (model_id, curve, steps)
        assert 0 <= child.data.metrics["test.macro_f1"] <= 1
        assert parent.info.start_time <= child.info.start_time
        assert child.info.end_time <= parent.info.end_time

    # stage summaries on the parent, comparable across runs
    metrics = parent.data.metrics
    for key in (
        "ingest.quarantined",
        "ingest.sessions",
        "align.streams_estimated",
        "align.sessions_quarantined",
        "align.quarantine_rows",
        "validation.bad_fraction",
        "validation.rejected_samples",
        "validation.failed.bad_sample_fraction",
        "eval.fused_macro_f1",
        # each data stage's own time, read by `modalops plan`
        "ingest.seconds",
        "align.seconds",
        "validation.seconds",
        "shard.seconds",
    ):
        assert key in metrics, (key, sorted(metrics))
    assert metrics["ingest.sessions"] == 10
    assert metrics["validation.bad_fraction"] == pytest.approx(summary["bad_fraction"])
    assert metrics["validation.failed.bad_sample_fraction"] == 0.0
    assert any(k.startswith("align.completeness_") for k in metrics)

    # the dataset version is an input of the parent and of every child, with its spec
    for run_id in [pid, *(c.info.run_id for c in children.values())]:
        inputs = client.get_run(run_id).inputs.dataset_inputs
        assert len(inputs) == 1, run_id
        dataset = inputs[0].dataset
        assert dataset.name == f"{spec.name}@{manifest.version}"
        assert dataset.digest == manifest.spec_digest[:36]
        assert manifest.prefix in json.loads(dataset.source)["uri"]
        assert spec_from_text(json.loads(dataset.profile)["dataset.yaml"]).digest() == spec.digest()

    # one top-level artifact folder per stage, the Data Docs site inside validation/
    paths = _artifact_paths(client, pid)
    assert {p.split("/", 1)[0] for p in paths} == STAGE_FOLDERS, sorted(paths)
    for expected in (
        "ingest/summary.md",
        "ingest/quarantine.parquet",
        "align/report.parquet",
        "align/sync_report.html",  # issue 25: the sync report card on every run
        "validation/verdict.md",
        "validation/data_docs/index.html",
        "validation/data_docs.html",
        "training/balancing.md",
        "evaluation/report.json",
        "evaluation/report.html",
        "evaluation/headline.md",
        "registration/gate.json",
    ):
        assert expected in paths, (expected, sorted(paths))
    assert any(p.startswith("align/plots/") and p.endswith(".png") for p in paths)
    assert any(p.startswith("evaluation/plots/") for p in paths)
    local = client.download_artifacts(pid, "evaluation/report.json", str(tmp_path))
    report = json.loads(Path(local).read_text())
    assert report["gate"]["decision"] == "promoted"

    # the registered version links to the fused model's run, which holds the logged model
    fused = children[FUSED_ID].info.run_id
    version = client.get_model_version(cfg.registry.model_name, summary["model_version"])
    assert version.run_id == fused == summary["mlflow_run_id"]
    assert version.tags["dataset_version"] == manifest.version
    assert version.tags["pipeline_run_id"] == pid
    # no review fed this run: the align stage counted 0 reviewed labels, and the version says so
    assert parent.data.metrics["align.reviewed_labels"] == 0
    assert version.tags["reviewed_labels"] == "0"
    assert "registration/gate.json" in _artifact_paths(client, fused)
    # the version says what it is and what the gate decided; its logged model knows the
    # version and the dataset (the logged-model page's Registered / Datasets used)
    for words in (manifest.version, "Fused multimodal classifier", "macro-F1 [95% CI]",
                  "**Promotion gate**: promoted"):  # fmt: skip
        assert words in version.description, (words, version.description)
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [
        {"name": cfg.registry.model_name, "version": summary["model_version"]}
    ]
    used = {(m.dataset_name, m.dataset_digest) for m in logged.metrics if m.dataset_name}
    assert used == {(f"{spec.name}@{manifest.version}", manifest.spec_digest[:36])}
    # the Data Docs in one self-contained page: no script, stylesheet or image to fetch
    page = Path(client.download_artifacts(pid, "validation/data_docs.html", str(tmp_path)))
    text = page.read_text()
    assert "<style>" in text and "ge-section" in text
    assert not re.search(r"<script|<link|<img|(src|href)=\"(?!#)", text)
    # the fused run's charts: the curves in their own sections, how many single-value ones
    fused_metrics = children[FUSED_ID].data.metrics
    single = [k for k in fused_metrics if "/" not in k]
    assert set(CURVES) <= set(fused_metrics) and len(single) <= 30, sorted(single)
    print(f"\nfused run: {len(fused_metrics)} metrics, {len(single)} single-value ones")
    mlflow.set_tracking_uri(cfg.registry.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{cfg.registry.model_name}@champion")
    store = open_store(store_uri)
    held_out = [
        s for _, s in zip(range(3), iter_raw_samples(store, manifest, "test"), strict=False)
    ]
    from modalops.serving.pyfunc import to_input_frame

    assert len(model.predict(to_input_frame(held_out, spec))) == len(held_out)

    points = {
        r.info.run_name: sum(
            len(client.get_metric_history(r.info.run_id, k)) for k in r.data.metrics
        )
        for r in runs
    }
    seconds = (parent.info.end_time - parent.info.start_time) / 1000
    print(
        f"\nparent run lasted {seconds:.1f} s with {len(metrics)} metrics; metric points per run "
        f"{points} ({sum(points.values())} in all)"
    )


def test_tracking_context_is_picklable():
    """Prefect passes it between tasks and results may be persisted: plain values only."""
    import pickle

    ctx = TrackingContext("sqlite:////tmp/x.db", "1", "abc", None)
    assert pickle.loads(pickle.dumps(ctx)) == ctx
