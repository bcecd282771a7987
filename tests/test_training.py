"""Training: a tiny in-process run writes a loadable checkpoint to the store; plan and balancing."""

from __future__ import annotations

import pytest

from modalops.config.train import TrainConfig
from modalops.shard import iter_raw_samples
from modalops.store import LocalStore
from modalops.testing.shards import other_spec, write_test_shards
from modalops.train.models import load_classifier, predict_proba
from modalops.train.training import (
    balance_report,
    balancing,
    model_plan,
    train_cache_key,
    train_model,
)
from modalops_demo.names import demo_spec


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("store"))
    return store, write_test_shards(store, demo_spec())


def test_one_epoch_run_writes_checkpoint(dataset, tmp_path):
    store, manifest = dataset
    cfg = TrainConfig(max_epochs=1, batch_size=8, hidden_dim=4, streams=["camera", "vibration"])
    result = train_model(store, manifest, cfg, "fused", ["vibration", "camera"], tmp_path)
    # content-addressed: datasets/<version>/models/<model_id>/<train key>/model-<sha16>.pt
    folder, name = result.checkpoint_key.rsplit("/", 1)
    assert folder.startswith(f"datasets/{manifest.version}/models/fused/")
    assert name == f"model-{result.checkpoint_sha256[:16]}.pt" and not result.cache_hit
    assert store.exists(result.checkpoint_key)
    assert result.streams == ["camera", "vibration"]
    assert result.metrics["epochs"] == 1 and 0.0 <= result.metrics["val_macro_f1"] <= 1.0
    assert result.metrics["val_loss"] > 0 and result.metrics["samples_per_s"] > 0
    assert result.ranks_shards == {0: sorted(manifest.shard_urls("train"))}

    model, info = load_classifier(store.get_bytes(result.checkpoint_key))
    assert model.streams == ["camera", "vibration"]
    assert info["meta"]["dataset_version"] == manifest.version
    assert info["meta"]["spec_digest"] == manifest.spec_digest
    assert model.window_s == manifest.window_s and model.spec == manifest.dataset_spec()
    probs = predict_proba(model, iter_raw_samples(store, manifest, "test"))
    assert probs.shape == (manifest.splits["test"].n_samples, 4)


def test_unknown_stream_is_named_against_the_spec(dataset, tmp_path):
    store, manifest = dataset
    with pytest.raises(
        ValueError, match=r"train.streams: \['lidar'\] are not streams of dataset spec"
    ):
        train_model(store, manifest, TrainConfig(), "fused", ["lidar"], tmp_path)


def test_a_non_demo_spec_trains_a_model_sized_from_it(tmp_path):
    """Two grey 32x32 cameras, a 6-channel 50 Hz IMU and free text, 3 classes: the model's
    encoders, input shapes and classes all come from the spec, and it learns the classes."""
    spec = other_spec()
    store = LocalStore(tmp_path / "store")
    manifest = write_test_shards(store, spec, n_sessions=6, windows=12, window_s=2.0)
    cfg = TrainConfig(max_epochs=4, batch_size=8, hidden_dim=8, learning_rate=1e-2)
    plan = model_plan(spec, cfg)
    assert plan[0] == ("fused", ["top_cam", "side_cam", "wrist_imu", "remarks"])
    assert [mid for mid, _ in plan[1:]] == spec.stream_names
    model_id, streams = plan[0]
    result = train_model(store, manifest, cfg, model_id, streams, tmp_path / "work")
    model, info = load_classifier(store.get_bytes(result.checkpoint_key))
    assert info["labels"] == ["rest", "reach", "grasp"] and model.n_classes == 3
    assert model.input_shapes["wrist_imu"] == (6, 100) and model.input_shapes["top_cam"] == (
        1,
        32,
        32,
    )
    raws = list(iter_raw_samples(store, manifest, "val"))
    preds = predict_proba(model, raws).argmax(axis=1)
    accuracy = sum(int(p) == r["label_index"] for p, r in zip(preds, raws, strict=True)) / len(raws)
    assert accuracy > 0.5  # chance is 1/3; every stream shows the class


def test_model_plan_defaults_and_overrides():
    spec = demo_spec()
    plan = model_plan(spec, TrainConfig())
    assert plan[0] == ("fused", spec.stream_names)
    assert plan[1:] == [(s, [s]) for s in spec.stream_names]
    assert model_plan(spec, TrainConfig(streams=["notes", "audio"], baselines=False)) == [
        ("fused", ["audio", "notes"])
    ]
    assert model_plan(spec, TrainConfig(streams=["audio"])) == [("fused", ["audio"])]
    with pytest.raises(ValueError, match=r"\['lidar'\] are not streams"):
        model_plan(spec, TrainConfig(streams=["lidar"]))
    with pytest.raises(ValueError, match="duplicated"):
        TrainConfig(streams=["audio", "audio"])


def test_balancing_modes(dataset):
    _, manifest = dataset
    classes = manifest.dataset_spec().labels.classes
    counts = manifest.splits["train"].label_counts
    cw, sw = balancing(manifest, TrainConfig(balancing="class_weight"))
    assert sw is None and len(cw) == len(classes)
    rare = min(counts, key=counts.get)
    common = max(counts, key=counts.get)
    assert cw[classes.index(rare)] >= cw[classes.index(common)]
    # subgroup_upsample defaults to the column the split was stratified by (the spec's)
    cw, sw = balancing(manifest, TrainConfig(balancing="subgroup_upsample"))
    assert cw is None and sw.field == manifest.stratify_by == "site"
    assert set(sw.weights) == set(manifest.splits["train"].group_counts["site"])
    with pytest.raises(ValueError, match="balance_group='lighting'"):
        balancing(manifest, TrainConfig(balancing="subgroup_upsample", balance_group="lighting"))
    assert balancing(manifest, TrainConfig()) == (None, None)
    report = balance_report(manifest, TrainConfig(balancing="class_weight"))
    assert list(report["value"]) == [c for c in classes if c in counts]
    assert report["share_after"].sum() == pytest.approx(1.0)


def test_epoch_curves_go_to_the_given_mlflow_run(dataset, tmp_path):
    """Lightning's MLflow logger writes one point per epoch into the run it is given (step =
    epoch) and leaves that run's params and lifecycle to the pipeline."""
    from mlflow import MlflowClient

    store, manifest = dataset
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("curves")).info.run_id
    cfg = TrainConfig(max_epochs=2, batch_size=8, hidden_dim=4)
    tracking = {"tracking_uri": uri, "run_id": run_id}
    result = train_model(store, manifest, cfg, "camera", ["camera"], tmp_path, tracking=tracking)
    assert result.mlflow_run_id == run_id
    # grouped by MLflow's charts in a section per prefix (`train`, `val`): issue 24
    for name in ("train/loss", "val/loss", "val/macro_f1", "val/accuracy"):
        history = client.get_metric_history(run_id, name)
        assert sorted(m.step for m in history) == [0, 1], (name, history)
    assert not {"train_loss", "val_loss"} & set(client.get_run(run_id).data.metrics)
    best = min(client.get_metric_history(run_id, "val/loss"), key=lambda m: m.step)
    assert best.value > 0
    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"  # the pipeline closes it, not the logger
    assert run.data.params == {}  # no flattened spec from Lightning's hparams


def test_the_decode_cache_does_not_change_the_trained_weights(dataset, tmp_path):
    """Two epochs with every shard decoded each epoch, and two with the decode cache (cold, then
    warm): the same weights, bit for bit, and the same key, so either reuses the other."""
    import torch

    store, manifest = dataset
    base = dict(max_epochs=2, batch_size=8, hidden_dim=4, streams=["camera", "audio"])
    weights = []
    for on in (False, True):
        cfg = TrainConfig(**base, decode_cache=on, decode_cache_dir=str(tmp_path / "decoded"))
        result = train_model(
            store, manifest, cfg, "fused", ["camera", "audio"], tmp_path / str(on), reuse=False
        )
        model, _ = load_classifier(store.get_bytes(result.checkpoint_key))
        weights.append(model.state_dict())
    assert list(tmp_path.glob("decoded/*/*/light.json"))  # the second run used the cache
    assert weights[0].keys() == weights[1].keys()
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name
    on, off = (TrainConfig(**base, decode_cache=v) for v in (True, False))
    assert train_cache_key(manifest, "fused", ["camera", "audio"], on) == train_cache_key(
        manifest, "fused", ["camera", "audio"], off
    )
