"""The capacity plan on synthetic measurements: a fake run catalog in a local store and a real
SQLite MLflow holding the metrics a run logs (parent, model children, a batch-inference run)."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
from mlflow import MlflowClient

from modalops.plan import (
    NOT_MEASURED,
    SPEEDUP_KEY,
    PlanError,
    format_plan,
    measure_run,
    plan_capacity,
    spec_stream_kinds,
)
from modalops.register.tracking import (
    FLOW_RUN_TAG,
    MODEL_ROLE,
    PARENT_TAG,
    PIPELINE_ROLE,
    ROLE_TAG,
    RUN_KEY_TAG,
)
from modalops.runs import put_frame
from modalops.store import open_store
from tests.test_dataset_spec import BASE

RUN = "20260101T000000Z-abc123"
EXPERIMENT = "plan-test"
# two sessions of 30 min each; bytes chosen so the per-hour figures are round numbers
CATALOG = pd.DataFrame(
    [
        # session, stream, kind, n_bytes, duration_s
        ("s1", "left_cam", "image", 1_000_000_000, 1800.0),
        ("s2", "left_cam", "image", 1_000_000_000, 1800.0),  # 2 GB over 1 h
        ("s1", "imu", "timeseries", 50_000_000, 1800.0),
        ("s2", "imu", "timeseries", 50_000_000, 1800.0),  # 0.1 GB/h
        ("s1", "labels", "labels", 1000, None),
        ("s2", "labels", "labels", 1000, None),
    ],
    columns=["session_id", "stream", "kind", "n_bytes", "duration_s"],
)


def _world(tmp_path, stage_metrics=True, batch=True, train=True):
    store = open_store(str(tmp_path / "store"))
    put_frame(store, f"runs/{RUN}/catalog.parquet", CATALOG)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(EXPERIMENT, artifact_location=(tmp_path / "art").as_uri())
    parent = client.create_run(
        exp,
        tags={ROLE_TAG: PIPELINE_ROLE, RUN_KEY_TAG: RUN, FLOW_RUN_TAG: "no-such-flow-run"},
    )
    pid = parent.info.run_id
    if stage_metrics:
        # one recorded hour: ingest 36 s, align 360 s, validation 72 s; no shard figure
        for key, v in {
            "ingest.seconds": 36.0,
            "align.seconds": 360.0,
            "validation.seconds": 72,
        }.items():
            client.log_metric(pid, key, v)
    if train:
        for model, sps in {"fused": 100.0, "left_cam": 200.0}.items():
            child = client.create_run(
                exp, tags={PARENT_TAG: pid, ROLE_TAG: MODEL_ROLE, "model_id": model}
            )
            client.log_metric(child.info.run_id, "train.samples_per_s", sps)
            client.log_metric(child.info.run_id, "train.epochs", 2.0)
    if batch:
        b = client.create_run(
            exp,
            tags={"modalops.stage": "batch_inference", "modalops.model_name": "m"},
        )
        client.log_metric(b.info.run_id, "inference.latency_per_window_ms", 5.0)
        client.log_metric(b.info.run_id, "inference.cost_per_1k_usd", 0.002)
    return store, uri


def _plan(store, uri, hours, kinds=None, **kw):
    measured = measure_run(store, uri, EXPERIMENT, "m", prefect_api=None)
    kinds = kinds or {"left_cam": "image", "imu": "timeseries"}
    return plan_capacity(measured, kinds, hours, hop_s=1.0, price_per_hour=2.0, **kw)


def test_figures_are_measured_and_scale_linearly_with_hours(tmp_path):
    store, uri = _world(tmp_path)
    one, ten = _plan(store, uri, 1.0), _plan(store, uri, 10.0)
    assert one.run_key == RUN  # the latest run, found in the store
    by = {s.stream: s for s in one.streams}
    assert by["left_cam"].gb_per_day == pytest.approx(2.0)
    assert by["imu"].gb_per_day == pytest.approx(0.1)
    assert one.raw_gb_per_day == pytest.approx(2.1)
    lines = {c.work: c for c in one.compute}
    assert lines["data: align"].hours_per_day == pytest.approx(0.1)  # 360 s per recorded hour
    assert lines["data: align"].usd_per_day == pytest.approx(0.2)
    # 3600 windows/h x 2 epochs / 100 + / 200 samples/s = 108 s
    assert lines["training"].hours_per_day == pytest.approx(108 / 3600)
    assert lines["batch inference"].hours_per_day == pytest.approx(3600 * 0.005 / 3600)
    assert lines["batch inference"].usd_per_day == pytest.approx(3.6 * 0.002)
    for a, b in zip(one.compute, ten.compute, strict=True):
        if a.hours_per_day is not None:
            assert b.hours_per_day == pytest.approx(10 * a.hours_per_day)
            assert b.usd_per_day == pytest.approx(10 * a.usd_per_day)
            assert b.hours_per_month == pytest.approx(30 * b.hours_per_day)
    assert ten.raw_gb_per_day == pytest.approx(10 * one.raw_gb_per_day)
    assert ten.windows_per_day == pytest.approx(36000)


def test_dominating_stage_is_named(tmp_path):
    store, uri = _world(tmp_path)
    plan = _plan(store, uri, 4.0)
    assert plan.dominating_stage == "align"
    assert "dominating data stage: align" in format_plan(plan)


def test_missing_measurements_are_reported_as_such(tmp_path):
    store, uri = _world(tmp_path, stage_metrics=False, batch=False, train=False)
    plan = _plan(store, uri, 8.0)
    lines = {c.work: c for c in plan.compute}
    assert all(c.hours_per_day is None for c in plan.compute)
    assert lines["training"].note.startswith(NOT_MEASURED)
    assert plan.dominating_stage is None
    assert plan.shard_gb_per_day is None
    text = format_plan(plan)
    assert "dominating data stage: not measured" in text
    assert "Dask workers: not measured" in text and "GPU: not measured" in text
    assert json.loads(json.dumps(plan.to_dict()))["compute"][0]["hours_per_day"] is None


def test_stream_names_come_from_the_spec(tmp_path):
    from modalops.dataset.spec import parse_spec

    store, uri = _world(tmp_path)
    spec = parse_spec(copy.deepcopy(BASE))
    kinds = spec_stream_kinds(spec)
    assert list(kinds) == ["left_cam", "right_cam", "imu", "speech"]
    plan = _plan(store, uri, 2.0, kinds=kinds)
    by = {s.stream: s for s in plan.streams}
    assert [s.stream for s in plan.streams] == list(kinds)
    # right_cam was not in the run: estimated from the measured stream of its kind, and said so
    assert by["right_cam"].gb_per_day == pytest.approx(4.0)
    assert "image average of left_cam" in by["right_cam"].source
    assert by["speech"].gb_per_day is None and by["speech"].source == NOT_MEASURED
    assert any("speech" in n for n in plan.remarks)
    text = format_plan(plan)
    assert "right_cam (image)" in text and "speech (text)" in text


def test_recorded_dask_speedup_is_used(tmp_path):
    store, uri = _world(tmp_path)
    store.put_text(
        SPEEDUP_KEY,
        json.dumps({"speedup": 1.8, "workers": 2, "sessions": 24, "serial_s": 90.0,
                    "dask_s": 50.0, "cpus": 2}),
    )  # fmt: skip
    plan = _plan(store, uri, 1.0)
    assert any("Dask, 2 workers" in s and "1.80x" in s for s in plan.scaling)


def test_bad_input_names_the_problem(tmp_path):
    store, uri = _world(tmp_path)
    with pytest.raises(PlanError, match="hours-per-day"):
        _plan(store, uri, 0.0)
    with pytest.raises(PlanError, match="no catalog for run 'nope'"):
        measure_run(store, uri, EXPERIMENT, "m", run_key="nope", prefect_api=None)
    empty = open_store(str(tmp_path / "empty"))
    with pytest.raises(PlanError, match="no finished run"):
        measure_run(empty, uri, EXPERIMENT, "m", prefect_api=None)


def test_cli_prints_the_plan_and_json(tmp_path, monkeypatch):
    import yaml
    from typer.testing import CliRunner

    from modalops.cli import app

    store, uri = _world(tmp_path)
    # no raw data here: the plan falls back to the spec the measured run was built from
    store.put_text(f"runs/{RUN}/dataset.yaml", yaml.safe_dump(BASE))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no local Prefect server to find: stage times from MLflow
    args = [
        "plan", "--hours-per-day", "3", "--price-per-hour", "2",
        "--set", f"store.uri={tmp_path / 'store'}",
        "--set", f"ingest.raw_uri={tmp_path / 'no-raw'}",
        "--set", f"registry.tracking_uri={uri}",
        "--set", f"registry.experiment={EXPERIMENT}",
        "--set", "registry.model_name=m",
    ]  # fmt: skip
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0, text.output
    assert "3 recorded hours/day" in text.output and "dominating data stage: align" in text.output
    assert "right_cam (image)" in text.output
    out = CliRunner().invoke(app, [*args, "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["raw_gb_per_day"] == pytest.approx(3 * (2.0 + 2.0 + 0.1))  # right_cam estimated
    assert doc["dominating_stage"] == "align"
    bad = CliRunner().invoke(app, [*args[:3], "--set", "store.uri=" + str(tmp_path / "none")])
    assert bad.exit_code == 2 and "no finished run" in bad.output


def test_cli_never_prints_the_tracking_password(tmp_path, monkeypatch):
    """A tracking server that does not answer: the error names the URI with its password
    masked (MLflow's own message carries the whole URL), exit 2, no traceback."""
    from typer.testing import CliRunner

    from modalops.cli import app
    from modalops.services import free_port

    store, _uri = _world(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    dead = f"http://analyst:s3cretpw@127.0.0.1:{free_port()}"
    args = [
        "plan", "--hours-per-day", "3",
        "--set", f"store.uri={tmp_path / 'store'}",
        "--set", f"registry.tracking_uri={dead}",
        "--set", f"registry.experiment={EXPERIMENT}",
    ]  # fmt: skip
    out = CliRunner().invoke(app, args)
    shown = out.output + "".join(map(str, [out.exception or ""]))
    assert "s3cretpw" not in shown, shown
    assert out.exit_code == 2, shown
    assert "analyst:***@127.0.0.1" in out.output
