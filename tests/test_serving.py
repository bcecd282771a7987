"""The pyfunc built from the spec: input columns and signature from the spec, the round trip
log -> register -> load models:/name@champion -> predict, the gate refusing a worse challenger,
clear errors for unknown columns and for a spec the model was not trained on, and every input row
checked with its streams' kinds' validation rules (issues, missing streams, abstention)."""

from __future__ import annotations

import base64
import io
import json
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from modalops.dataset.spec import SpecError
from modalops.register import RescoringSet, log_and_register
from modalops.serving.pyfunc import (
    CHECKPOINT_ARTIFACT,
    SERVING_CONFIG_ARTIFACT,
    SPEC_ARTIFACT,
    MultimodalPyfunc,
    check_spec,
    outputs_frame,
    rows_to_raw,
    serving_config,
    to_input_frame,
)
from modalops.serving.signature import model_signature
from modalops.testing.models import (
    fit_tiny,
    make_samples,
    other_spec,
    save_tiny,
    tiny_classifier,
    tiny_report,
)
from modalops_demo.names import LABELS, demo_spec


def test_outputs_frame_calibrates_and_abstains():
    logits = np.array([[4.0, 0.0, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0]])
    out = outputs_frame(logits, list(LABELS), temperature=2.0, threshold=0.5)
    # softmax([2, 0, 0, 0]) = e^2 / (e^2 + 3)
    assert out["probability"][0] == pytest.approx(np.e**2 / (np.e**2 + 3))
    assert out["label"].tolist() == [LABELS[0], LABELS[0]]
    assert out["abstained"].tolist() == [False, True]
    assert out["abstain_reason"].tolist() == ["", "probability 0.26 < threshold 0.50"]
    assert out[[f"prob_{c}" for c in LABELS]].sum(axis=1).tolist() == pytest.approx([1, 1])


def test_rows_to_raw_accepts_bytes_base64_and_missing():
    spec = demo_spec()
    sample = make_samples(spec, 1)[0]["streams"]
    jpg, wav = sample["camera"], sample["audio"]
    frame = to_input_frame([{"streams": sample}] * 3, spec)
    frame["camera"] = [jpg, base64.b64encode(jpg).decode(), None]
    frame["audio"] = [wav, "", None]
    frame["vibration"] = [[[0.0, 1.0, 2.0]], None, np.nan]
    frame["notes"] = ["x", None, ""]
    raws = rows_to_raw(frame, spec)
    assert raws[0]["camera"] == jpg and raws[1]["camera"] == jpg and raws[2]["camera"] is None
    assert raws[0]["audio"] == wav and raws[1]["audio"] is None
    assert raws[1]["vibration"] is None and raws[2]["vibration"] is None
    assert isinstance(raws[0]["vibration"], bytes)  # .npy bytes, as stored in shards
    assert [r["notes"] for r in raws] == ["x", "", ""]
    with pytest.raises(ValueError, match=r"unknown columns \['lidar'\].*streams \['camera'"):
        rows_to_raw(frame.assign(lidar=1), spec)
    with pytest.raises(ValueError, match="row 0, column camera"):
        rows_to_raw(frame.head(1).assign(camera=[12]), spec)


def test_a_non_demo_spec_gives_the_columns_and_signature():
    spec = other_spec()
    samples = make_samples(spec, 3)
    frame = to_input_frame(samples, spec)
    assert list(frame.columns) == ["wrist_video", "imu"]
    assert np.asarray(frame["imu"][0]).shape == (25, 6)  # 25 Hz x 1 s, 6 channels as rows
    sig = model_signature(spec)
    cols = {c.name: c for c in sig.inputs.inputs}
    assert list(cols) == ["wrist_video", "imu"]
    assert cols["wrist_video"].type.name == "binary" and not cols["wrist_video"].required
    assert "Array" in repr(cols["imu"].type)
    assert [c.name for c in sig.outputs.inputs][3:] == [
        "abstain_reason", "input_issues", "missing_streams", "prob_idle", "prob_walk", "prob_run"
    ]  # fmt: skip
    raws = rows_to_raw(frame, spec)
    assert set(raws[0]) == {"wrist_video", "imu"} and isinstance(raws[0]["imu"], bytes)
    with pytest.raises(
        ValueError, match=r"unknown columns \['camera', 'audio', 'vibration', 'notes'\]"
    ):
        rows_to_raw(to_input_frame(make_samples(demo_spec(), 1), demo_spec()), spec)


def test_check_spec_refuses_another_dataset():
    model = tiny_classifier(other_spec())
    check_spec(model, other_spec())  # its own spec is fine
    with pytest.raises(SpecError, match=r"does not match the spec the served model was trained on"):
        check_spec(model, demo_spec())
    changed = other_spec()
    changed.labels.classes = ["idle", "walk", "sprint"]
    with pytest.raises(SpecError, match=r"classes \['idle', 'walk', 'sprint'\]"):
        check_spec(model, changed)


def test_round_trip_champion_and_worse_challenger_refused(tmp_path):
    spec = demo_spec()
    train, test = make_samples(spec, 16, seed=0), make_samples(spec, 16, seed=1)
    save_tiny(fit_tiny(tiny_classifier(spec), train, steps=120), tmp_path / "good.pt")
    save_tiny(tiny_classifier(spec, seed=3), tmp_path / "bad.pt")
    data = RescoringSet.from_raw_samples(test, spec, slices=["site", "lighting"])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    common = dict(
        tracking_uri=uri,
        experiment="t",
        model_name="tiny",
        config_dict={"train": {"hidden_dim": 4}},
        tags={"dataset_version": "v1", "prefect_flow_run_id": "run-1"},
        artifacts={},
        test_samples_for_rescoring=data,
    )

    first = log_and_register(
        checkpoint_path=tmp_path / "good.pt", report=tiny_report(), dataset_spec=spec, **common
    )
    assert first.promoted and first.aliases == ["challenger", "champion"]

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/tiny@champion")
    pred = model.predict(data.inputs)
    assert set(pred["label"]) <= set(LABELS) and len(pred) == len(test)
    truth = [LABELS[s["label_index"]] for s in test]
    assert (pred["label"] == truth).mean() > 0.5  # learned something real on unseen samples
    # every clean test row passes every stream's checks, through MLflow's own load path
    assert (pred["input_issues"] == "").all() and (pred["missing_streams"] == "").all()
    # a missing stream is an empty cell, not an error; the output names it
    partial = model.predict(data.inputs.head(2).assign(camera=None, notes=""))
    assert partial["missing_streams"].tolist() == ["camera, notes"] * 2
    # the caller may state the spec it decodes with: the same one passes, another is refused
    same = model.predict(data.inputs.head(1), params={"dataset_spec": spec.to_yaml()})
    assert len(same) == 1
    with pytest.raises(Exception, match="does not match the spec the served model was trained on"):
        model.predict(data.inputs.head(1), params={"dataset_spec": other_spec().to_yaml()})
    # MLflow's schema enforcement drops a column the signature lacks (with a warning naming it)
    # before our code sees it; the pyfunc itself refuses unknown columns, naming them
    with pytest.raises(ValueError, match=r"unknown columns \['lidar'\]"):
        model.unwrap_python_model().predict(None, data.inputs.head(1).assign(lidar=[b"x"]))

    run = mlflow.get_run(first.run_id)
    assert run.data.tags["dataset_version"] == "v1"
    assert run.data.tags["prefect_flow_run_id"] == "run-1"
    assert run.data.params["train.hidden_dim"] == "4"
    assert run.data.tags["dataset_spec_digest"] == spec.digest()

    worse = log_and_register(
        checkpoint_path=tmp_path / "bad.pt",
        report=tiny_report(threshold=0.99, flagged=["site=site_a"]),
        **common,
    )
    assert not worse.promoted and worse.decision.decision == "refused"
    assert worse.aliases == ["challenger"]
    assert any(r.startswith("FAIL beats_champion") for r in worse.reasons)
    client = mlflow.MlflowClient(uri)
    assert str(client.get_model_version_by_alias("tiny", "champion").version) == first.model_version
    assert (
        str(client.get_model_version_by_alias("tiny", "challenger").version) == worse.model_version
    )
    tags = client.get_model_version("tiny", worse.model_version).tags
    assert tags["promotion.decision"] == "refused" and "gate.slice_site_site_a" in tags
    # the challenger's own abstention threshold travels with it
    challenger = mlflow.pyfunc.load_model("models:/tiny@challenger").predict(data.inputs)
    assert challenger["abstained"].all()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The pyfunc as `load_context` leaves it, around a tiny model of the non-demo spec (video +
    6-channel IMU at 25 Hz) trained a few steps, so its encoders hold training statistics."""
    spec = other_spec()
    tmp = tmp_path_factory.mktemp("served")
    model = fit_tiny(tiny_classifier(spec), make_samples(spec, 6, seed=0), steps=5)
    save_tiny(model, tmp / "model.pt")
    labels = list(spec.labels.classes)
    config = serving_config(1.0, 0.0, labels, spec.digest(), list(spec.streams), 1.0)
    (tmp / "serving_config.json").write_text(json.dumps(config))
    (tmp / "dataset.yaml").write_text(spec.to_yaml())
    artifacts = {
        CHECKPOINT_ARTIFACT: str(tmp / "model.pt"),
        SERVING_CONFIG_ARTIFACT: str(tmp / "serving_config.json"),
        SPEC_ARTIFACT: str(tmp / "dataset.yaml"),
    }
    pyfunc = MultimodalPyfunc()
    pyfunc.load_context(SimpleNamespace(artifacts=artifacts))
    return pyfunc


def _black_jpeg(side: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side)).save(buf, "JPEG")
    return buf.getvalue()


def test_served_model_abstains_on_input_its_checks_reject(served):
    """Each row is checked with the rules validation applies to a window; a row that breaks one
    abstains whatever its probability and says which stream broke which rule."""
    spec = served.spec
    frame = to_input_frame(make_samples(spec, 7, seed=4), spec)
    imu = np.asarray(frame.at[1, "imu"])
    frame.at[1, "imu"] = np.full((5000, 6), 1e6).tolist()  # 200x the rows, absurd values
    frame.at[2, "imu"] = np.where(np.arange(25)[:, None] < 10, np.nan, imu).tolist()
    frame.at[3, "imu"] = (imu * 1e6).tolist()  # the window's 25 rows, a million times louder
    frame.at[4, "wrist_video"] = _black_jpeg(16)  # blank: no light, no edges
    frame.at[5, "wrist_video"] = None
    frame.loc[6, ["wrist_video", "imu"]] = None
    out = served.predict(None, frame)

    issues = out["input_issues"].tolist()
    assert issues[0] == issues[5] == "" and out["missing_streams"][0] == ""
    assert not out["abstained"][0] and out["abstain_reason"][0] == ""  # threshold 0: never low
    assert out["abstained"][1:5].all() and out["abstained"][6]
    assert set(out["abstain_reason"][1:5]) == {"input issues"}
    assert "imu: imu_rate = 5000 (expected imu__rate in [20, 30]" in issues[1]
    assert "imu: imu_plausible_max = 1e+06" in issues[1]
    assert "imu: imu_nan_fraction = 0.4 (expected imu__nan_fraction in [-inf, 0.02])" in issues[2]
    # in rate and not NaN: only the range learnt from training (mean +- 50 sd per channel)
    mean = served.model.encoders["imu"].norm.running_mean.numpy()
    sd = np.sqrt(served.model.encoders["imu"].norm.running_var.numpy())
    high = float((mean + 50 * sd).max())
    assert 0.5 * 50 < high < 2 * 50  # the synthetic IMU's channels have sd ~0.8 about 0
    assert [i.split(" = ")[0] for i in issues[3].split("; ")] == [
        "imu: imu_plausible_min", "imu: imu_plausible_max"
    ]  # fmt: skip
    assert f"expected imu__max in [-inf, {high:g}]" in issues[3]
    assert "wrist_video: wrist_video_brightness = 0" in issues[4]
    assert "wrist_video: wrist_video_blur = 0" in issues[4]
    # a missing stream is named, and is no issue while another is there
    assert out["missing_streams"][5] == "wrist_video" and not out["abstained"][5]
    assert out["missing_streams"][6] == "wrist_video, imu"
    assert issues[6] == "no stream present (expected at least one of ['wrist_video', 'imu'])"


def test_served_model_names_unknown_and_absent_columns(served):
    """An unknown column is refused where the pyfunc sees it; a column MLflow's schema
    enforcement dropped (or the caller left out) is a missing stream, named in the output."""
    frame = to_input_frame(make_samples(served.spec, 2, seed=4), served.spec)
    with pytest.raises(ValueError, match=r"unknown columns \['imu_v2'\].*streams \['wrist_video'"):
        served.predict(None, frame.rename(columns={"imu": "imu_v2"}))
    out = served.predict(None, frame.drop(columns=["imu"]))
    assert out["missing_streams"].tolist() == ["imu", "imu"] and not out["abstained"].any()


def test_timeseries_serving_range_comes_from_training_statistics():
    """Without training statistics (an encoder that saw no batch) the fixed rules stay, and
    infinities are still caught; trained, the range is each channel's mean +- 50 sd."""
    from modalops.kinds.timeseries import checks

    spec = other_spec()
    params, limits = spec.params("imu"), spec.checks("imu")
    untrained = tiny_classifier(spec).encoders["imu"]
    by_check = {r.check: r for r in checks.serving_rules("imu", params, limits, untrained)}
    assert by_check["imu_plausible_max"].max_value == np.finfo(np.float64).max
    assert {r.check for r in checks.sample_rules("imu", params, limits)} < set(by_check)
    row = pd.DataFrame({"imu__max": [np.inf, 1e6], "imu__min": [0.0, 0.0]})
    assert by_check["imu_plausible_max"].mask(row).tolist() == [True, False]
    untrained.norm.running_mean[:] = torch.arange(6.0)
    untrained.norm.running_var[:] = 4.0
    untrained.norm.num_batches_tracked += 1
    by_check = {r.check: r for r in checks.serving_rules("imu", params, limits, untrained)}
    assert by_check["imu_plausible_max"].max_value == pytest.approx(5 + 50 * 2)
    assert by_check["imu_plausible_min"].min_value == pytest.approx(0 - 50 * 2)
