"""Training: a tiny in-process run writes a loadable checkpoint to the store; balancing hooks."""

from __future__ import annotations

import pytest
from test_shards import make_rows, put_parts

from modalops.config.pipeline import ShardConfig
from modalops.config.train import TrainConfig
from modalops.models import load_classifier, predict_proba
from modalops.shards import iter_raw_samples, write_shards
from modalops.store import LocalStore
from modalops.training import balancing, train_model


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("store"))
    keys = put_parts(store, make_rows(n_sessions=6, windows=12))
    return store, write_shards(store, keys, None, ShardConfig(samples_per_shard=8, seed=2))


def test_one_epoch_run_writes_checkpoint(dataset, tmp_path):
    store, manifest = dataset
    cfg = TrainConfig(max_epochs=1, batch_size=8, hidden_dim=4, modalities=["camera", "vibration"])
    result = train_model(store, manifest, cfg, "fused", ["vibration", "camera"], tmp_path)
    assert result.checkpoint_key == f"datasets/{manifest.version}/models/fused/model.pt"
    assert store.exists(result.checkpoint_key)
    assert result.modalities == ["camera", "vibration"]
    assert result.metrics["epochs"] == 1 and 0.0 <= result.metrics["val_macro_f1"] <= 1.0
    assert result.metrics["val_loss"] > 0 and result.metrics["samples_per_s"] > 0
    assert result.ranks_shards == {0: sorted(manifest.shard_urls("train"))}

    model, info = load_classifier(store.get_bytes(result.checkpoint_key))
    assert (
        model.modalities == ["camera", "vibration"]
        and info["meta"]["dataset_version"] == manifest.version
    )
    probs = predict_proba(model, iter_raw_samples(store, manifest, "test"))
    assert probs.shape == (manifest.splits["test"].n_samples, 4)


def test_balancing_modes(dataset):
    _, manifest = dataset
    counts = manifest.splits["train"].label_counts
    cw, sw = balancing(manifest, TrainConfig(balancing="class_weight"))
    assert sw is None and len(cw) == 4
    rare = min(counts, key=counts.get)
    common = max(counts, key=counts.get)
    order = ["normal", "proximity", "fault", "near_miss"]
    assert cw[order.index(rare)] >= cw[order.index(common)]
    cw, sw = balancing(manifest, TrainConfig(balancing="subgroup_upsample"))
    assert (
        cw is None
        and sw.field == "site"
        and set(sw.weights) == set(manifest.splits["train"].group_counts["site"])
    )
    with pytest.raises(ValueError, match="balance_group='lighting'"):
        balancing(manifest, TrainConfig(balancing="subgroup_upsample", balance_group="lighting"))
    assert balancing(manifest, TrainConfig()) == (None, None)
