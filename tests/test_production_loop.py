"""The production loop end to end, against real servers (Prefect, MLflow on SQLite, Label Studio):

train → new sessions arrive (one with a corrupt WAV) → batch inference with the champion →
tasks with predictions in Label Studio → a scripted reviewer annotates through its REST API →
the feedback flow records corrections (and a conflict) next to the raw data → retraining puts
the reviewed labels in a new dataset version, and MLflow says how many.
"""

from __future__ import annotations

import io
import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modalops.align.windowing import label_windows
from modalops.cli import app
from modalops.config import load_config
from modalops.dataset import layout
from modalops.dataset.corrections import read_conflicts, read_corrections
from modalops.dataset.spec import SpecError
from modalops.infer import REVIEW, prediction_columns
from modalops.review.client import ReviewClient
from modalops.shard import load_manifest
from modalops.store import open_store
from modalops_demo.generate import (
    DemoDataConfig,
    add_incoming_sessions,
    generate_demo_data,
    incoming_truth,
)
from tests.conftest import REPO
from tests.test_review_server import _api, _choice

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# windows reviewed per new session: enough that a session's site or camera, when only reviews
# bring it into the dataset, still reaches validation.min_samples_per_subgroup (5 in ci.yaml)
PER_SESSION = 6


def _true_label(truth: pd.DataFrame, t0: float, t1: float, spec) -> str | None:
    label, *_ = label_windows(np.array([t0]), np.array([t1]), truth, 0.5, spec.labels.classes)
    return None if label[0] is None else str(label[0])


def test_production_loop(prefect_api, label_studio, tmp_path, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.batch_inference import batch_inference
    from flows.feedback import feedback
    from flows.training_pipeline import training_pipeline

    raw_uri, store_uri = str(tmp_path / "raw"), str(tmp_path / "store")
    raw, store = open_store(raw_uri), open_store(store_uri)
    demo = DemoDataConfig(sessions=8, duration_s=30.0, seed=5)
    generate_demo_data(raw, demo)
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio["token"])
    base = [
        f"store.uri={store_uri}",
        f"ingest.raw_uri={raw_uri}",
        f"registry.tracking_uri={tracking_uri}",
        f"review.url={label_studio['url']}",
        "review.project_prefix=loop",
        "train.baselines=false",  # the loop needs the fused model only (baselines: test_tracking)
    ]
    cfg = load_config([REPO / "configs" / "ci.yaml"], base)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)

    with temporary_settings({PREFECT_API_URL: prefect_api}):
        # 1. train
        first = training_pipeline(cfg)
        spec = load_manifest(store, first["dataset_version"]).dataset_spec()
        test_sid = load_manifest(store, first["dataset_version"]).splits["test"].sessions[0]

        # the command docs/inference.md shows, run before any new session arrived: it says
        # that `new` selected none and why, and prints no share, latency or cost (was nan%)
        monkeypatch.setenv("PREFECT_API_URL", prefect_api)
        sets = [arg for value in base for arg in ("--set", value)]
        shown = CliRunner().invoke(app, ["infer", "-c", str(REPO / "configs" / "ci.yaml"), *sets])
        assert shown.exit_code == 0, shown.output
        assert "windows: 0 from 0 sessions" in shown.output, shown.output
        assert (
            "inference.sessions='new' selected 0 of 8 sessions: every session is in the model's "
            f"dataset version {first['dataset_version']}" in shown.output
        ), shown.output
        assert "--set inference.sessions=all, unlabelled, champion_test" in shown.output
        assert "nan" not in shown.output and "n/a" not in shown.output, shown.output

        # 2. new sessions arrive, unlabelled; the first one's WAV is truncated
        new_ids = add_incoming_sessions(raw, demo, 3)
        wav = layout.session_key(spec, new_ids[0], spec.streams["audio"].path)
        raw.put_bytes(wav, raw.get_bytes(wav)[:60])
        # every window to review (min_probability 1.0), so the reviewer has windows of every
        # session to answer; the default routing is measured by the demo (closing note)
        every_class = "{" + ", ".join(f"{c}: 1.0" for c in spec.labels.classes) + "}"
        bcfg = load_config(
            [REPO / "configs" / "ci.yaml"],
            [
                *base,
                f"inference.sessions=[{', '.join([*new_ids, test_sid])}]",
                f"inference.verification.min_probability={every_class}",
            ],
        )
        batch = batch_inference(bcfg)

    # structured predictions in the store: one row per window, from the champion
    pred = pd.read_parquet(io.BytesIO(store.get_bytes(batch["predictions_key"])))
    assert list(pred.columns) == prediction_columns(spec)
    assert set(pred["session_id"]) == {*new_ids, test_sid}
    assert set(pred["model_version"]) == {first["model_version"]}
    assert set(pred["spec_digest"]) == {spec.digest()}
    probs = pred[[f"prob_{c}" for c in spec.labels.classes]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert pred.loc[pred.session_id.isin(new_ids), "true_label"].isna().all()
    assert pred.loc[pred.session_id == test_sid, "true_label"].notna().any()
    assert (pred["route"] == REVIEW).all()
    # the truncated WAV: a quarantine row naming it; its session still predicted, routed for it
    qkey = batch["predictions_key"].replace("predictions.parquet", "quarantine.parquet")
    quarantine = pd.read_parquet(io.BytesIO(store.get_bytes(qkey)))
    bad = quarantine[quarantine["uri"].astype(str).str.endswith(wav)]
    assert len(bad) >= 1 and bad["reason"].str.len().gt(10).all(), quarantine
    broken = pred[pred.session_id == new_ids[0]]
    assert len(broken) and not broken["has__audio"].any()
    assert broken["reasons"].str.contains("missing audio").all()
    # per reason: how many windows it routed, and their error rate where the label is known
    by_reason = batch["summary"]["by_reason"]
    assert by_reason and sum(r["routed"] for r in by_reason.values()) >= len(pred), by_reason
    assert all(r["windows_with_truth"] <= r["routed"] for r in by_reason.values())
    # the batch's MLflow run is linked to the model version and holds latency and cost
    brun = client.get_run(batch["mlflow_run_id"])
    assert brun.data.tags["modalops.model_version"] == first["model_version"]
    assert brun.data.metrics["inference.windows"] == len(pred)
    assert brun.data.metrics["inference.cost_per_1k_usd"] > 0
    assert brun.data.metrics["inference.windows_per_s_model"] > 0
    # the run spans the batch (issue 24: it read 39 ms for a 6 s batch)
    lasted_s = (brun.info.end_time - brun.info.start_time) / 1000
    assert lasted_s >= batch["summary"]["wall_seconds"], (lasted_s, batch["summary"])
    version = client.get_model_version(cfg.registry.model_name, first["model_version"])
    assert version.tags["last_batch_run"] == batch["mlflow_run_id"]

    # 3. the tasks are in a real Label Studio, each starting from the model's answer
    url, token = label_studio["url"], label_studio["token"]
    assert batch["review"]["imported"] == len(pred) == batch["review"]["tasks"]
    project = ReviewClient(url, token, "loop").find_project(cfg.registry.model_name)
    tasks = _api(url, token, f"/api/tasks?project={project['id']}&page_size=1000&fields=all")
    tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
    assert len(tasks) == len(pred)
    one = _api(url, token, f"/api/tasks/{tasks[0]['id']}")
    assert one["predictions"] and one["predictions"][0]["model_version"].endswith(
        f"v{first['model_version']}"
    )
    assert str(one["data"]["subject"]) != ""  # the pseudonym, never the raw id
    raw_subjects = set(layout.read_sessions(raw, spec)[spec.metadata.subject].astype(str))
    assert not ({str(t["data"].get("subject")) for t in tasks} & raw_subjects)

    # 4. a scripted reviewer: the true class for some windows of two new sessions, and a wrong
    #    class for one window of the held-out session, which has a human label (a conflict)
    answered, conflict = [], None
    truths = {sid: incoming_truth(raw, sid) for sid in new_ids[1:]}
    test_labels = layout.read_labels(raw, spec, test_sid)
    for task in tasks:
        d = task["data"]
        sid, t0, t1 = d["session_id"], float(d["t_start"]), float(d["t_end"])
        if sid in truths and sum(a[0] == sid for a in answered) < PER_SESSION:
            label = _true_label(truths[sid], t0, t1, spec)
            if label is not None:
                answered.append((sid, t0, label))
                _api(url, token, f"/api/tasks/{task['id']}/annotations/",
                     {"result": _choice(label)})  # fmt: skip
        elif sid == test_sid and conflict is None:
            human = _true_label(test_labels, t0, t1, spec)
            if human is not None:
                wrong = next(c for c in spec.labels.classes if c != human)
                conflict = (sid, t0, human, wrong)
                _api(url, token, f"/api/tasks/{task['id']}/annotations/",
                     {"result": _choice(wrong)})  # fmt: skip
    assert len(answered) == 2 * PER_SESSION and conflict is not None

    # 5. the feedback flow records them next to the raw data, the conflict apart; the second
    # time through `modalops feedback`, the command docs/inference.md shows
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        fed = feedback(cfg)
        assert fed["written"] == 2 * PER_SESSION and fed["conflicts"] == 1
    shown = CliRunner().invoke(app, ["feedback", "-c", str(REPO / "configs" / "ci.yaml"), *sets])
    assert shown.exit_code == 0, shown.output
    again = json.loads(shown.output[shown.output.index("{") :])  # after MLflow's progress bars
    assert again["written"] == 0 and again["already_recorded"] == 2 * PER_SESSION + 1
    corrections = read_corrections(raw, spec)
    assert len(corrections) == 2 * PER_SESSION and set(corrections["version"]) == {1}
    assert set(corrections["reviewer"]) == {"admin@modalops.local"}
    assert corrections["predicted_label"].notna().all()
    assert corrections["reviewed_at"].notna().all()
    conflicts = read_conflicts(raw, spec)
    assert len(conflicts) == 1
    c = conflicts.iloc[0]
    assert (c["label"], c["existing_label"]) == (conflict[3], conflict[2])

    # 6. retraining uses them: a new dataset version, with the reviewed windows in it
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        second = training_pipeline(cfg)
    assert second["dataset_version"] != first["dataset_version"]
    manifest = load_manifest(store, second["dataset_version"])
    seen = {s for split in manifest.splits.values() for s in split.sessions}
    assert set(truths) <= seen  # labelled only by review, now in the dataset
    assert new_ids[0] not in seen  # nobody reviewed it: not labelled yet, skipped
    parent = client.get_run(second["mlflow_parent_run_id"])
    assert parent.data.metrics["align.reviewed_labels"] == 2 * PER_SESSION
    mv2 = client.get_model_version(cfg.registry.model_name, second["model_version"])
    assert mv2.tags.get("dataset_version") == second["dataset_version"]


def test_a_batch_whose_spec_differs_from_the_model_is_refused(tmp_path):
    """The model decodes with its own spec: a batch declaring other classes is refused, naming
    the difference, before anything is read."""
    from modalops.infer.batch import run_batch
    from modalops.infer.champion import ServedModel
    from modalops_demo.names import demo_spec

    spec = demo_spec()
    other = spec.model_copy(
        update={"labels": spec.labels.model_copy(update={"classes": ["a", "b"]})}
    )
    served = ServedModel("m", "1", "r", None, spec, 0.5, 1.0)
    with pytest.raises(SpecError, match="classes"):
        run_batch(open_store(str(tmp_path)), open_store(str(tmp_path)), other,
                  load_config([], []), served, "p")  # fmt: skip
