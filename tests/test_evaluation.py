"""The evaluation report: pure tables on synthetic predictions, then the stage on real shards."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modalops.config.evaluate import EvaluateConfig
from modalops.config.pipeline import ShardConfig
from modalops.evaluate import (
    EvaluationReport,
    ModelOutputs,
    SplitTruth,
    build_report,
    drop_stream,
    evaluate_models,
)
from modalops.shard import write_shards
from modalops.store import open_store
from modalops.testing.models import (
    fit_tiny,
    make_samples,
    other_spec,
    samples_table,
    save_tiny,
    tiny_classifier,
)
from modalops_demo.names import LABELS, demo_spec

CFG = EvaluateConfig(slices=["site", "lighting"], n_boot=100, min_slice_n=5, slice_margin=0.1)


def _split(n, rng, sites=("A", "B")):
    """Labels drawn from softmax(base): `base` are the true log-odds, kept for making predictions."""
    base = rng.normal(size=(n, 4)) * 2.5
    p = np.exp(base) / np.exp(base).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    groups = np.array([f"s{i // 10}" for i in range(n)])
    meta = pd.DataFrame(
        {
            "site": [sites[i % len(sites)] for i in range(n)],
            "lighting": rng.choice(["day", "night"], n),
        }
    )
    return SplitTruth(y, groups, meta), base


def _probs(base, rng, noise=0.0, sharpen=3.0, noisy_rows=None):
    """A model seeing the true log-odds plus noise, over-confident by a factor `sharpen`."""
    z = base + rng.normal(size=base.shape) * noise
    if noisy_rows is not None:
        z[noisy_rows] = base[noisy_rows] + rng.normal(size=base[noisy_rows].shape) * 6.0
    e = np.exp(sharpen * (z - z.max(axis=1, keepdims=True)))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def report():
    rng = np.random.default_rng(0)
    (val, vbase), (test, tbase) = _split(300, rng), _split(300, rng)
    site_b = (test.meta["site"] == "B").to_numpy()
    fused = ModelOutputs(
        "fused",
        ["camera", "audio"],
        _probs(vbase, rng, noisy_rows=(val.meta["site"] == "B").to_numpy()),
        _probs(tbase, rng, noisy_rows=site_b),
        n_params=1000,
        latency_ms=[1.0, 2.0, 3.0, 4.0],
        removed={"camera": _probs(tbase, rng, noise=8.0)},
    )
    camera = ModelOutputs("camera", ["camera"], _probs(vbase, rng, 4.0), _probs(tbase, rng, 4.0))
    return build_report(
        [fused, camera], val, test, CFG.model_copy(update={"hourly_price_usd": 3.6}), labels=LABELS
    )


def test_models_lift_and_cost(report):
    m = report.models.set_index("model_id")
    assert report.headline["lift"] == pytest.approx(
        m.loc["fused", "macro_f1"] - m.loc["camera", "macro_f1"]
    )
    assert report.headline["lift_lo"] <= report.headline["lift"] <= report.headline["lift_hi"]
    assert (
        m.loc["fused", "macro_f1_lo"] <= m.loc["fused", "macro_f1"] <= m.loc["fused", "macro_f1_hi"]
    )
    assert m.loc["fused", "latency_p50_ms"] == pytest.approx(2.5)
    # $3.60 per hour = $0.001 per second; mean 2.5 ms per sample → 2.5 s per 1k → $0.0025
    assert m.loc["fused", "cost_per_1k_usd"] == pytest.approx(0.0025)
    assert (
        report.robustness.loc[0, "removed"] == "camera" and report.robustness.loc[0, "drop"] > 0.1
    )
    assert sum(map(sum, report.confusion["fused"])) == 300


def test_slices_flag_the_bad_site(report):
    s = report.slices.set_index(["column", "value"])
    assert s.loc[("site", "B"), "flagged"] and not s.loc[("site", "A"), "flagged"]
    assert report.flagged_slices() == ["site=B"]
    assert s.loc[("site", "B"), "error_rate"] > s.loc[("site", "A"), "error_rate"]
    assert s["n"].groupby(level=0).sum().tolist() == [300, 300]
    assert report.headline["worst_slice"] == "site=B"


def test_calibration_and_abstention_use_validation(report):
    cal = report.calibration
    # 0.97 confidence with 80-90% accuracy is over-confident: T > 1 helps on held-out test
    assert cal["temperature"] > 1.0 and cal["ece_after"] < cal["ece_before"]
    ab = report.abstention
    assert 0 < ab["test_coverage"] <= 1 and ab["val_risk"] <= 1 - CFG.abstention_value + 1e-9
    assert report.slices["abstention_rate"].between(0, 1).all()


def test_json_round_trip_and_markdown(report):
    doc = json.loads(report.to_json())
    assert doc["headline"]["fused_model"] == "fused"
    back = EvaluationReport.from_json(report.to_json())
    assert back.flagged_slices() == ["site=B"]
    pd.testing.assert_frame_equal(back.models, report.models, check_dtype=False)
    md = report.headline_markdown()
    assert "| fused |" in md and "| camera |" in md and "Worst slice" in md and "site=B" in md


def test_build_report_refuses_mismatched_predictions(report):
    rng = np.random.default_rng(1)
    (val, _), (test, _) = _split(10, rng), _split(10, rng)
    bad = ModelOutputs("fused", ["camera"], np.full((10, 4), 0.25), np.full((9, 4), 0.25))
    with pytest.raises(ValueError, match="fused: 10/9"):
        build_report([bad], val, test, CFG, labels=LABELS)


def test_build_report_refuses_predictions_with_other_classes():
    rng = np.random.default_rng(2)
    (val, _), (test, _) = _split(10, rng), _split(10, rng)
    fused = ModelOutputs("fused", ["a"], np.full((10, 4), 0.25), np.full((10, 4), 0.25))
    with pytest.raises(ValueError, match="4 classes, the dataset spec declares 3"):
        build_report([fused], val, test, CFG, labels=["idle", "walk", "run"])


def test_drop_stream_empties_one_stream_only():
    sample = {"key": "s__000001", "streams": {"a": b"x", "b": "text"}, "label_index": 0}
    out = drop_stream(sample, "a")
    assert out["streams"] == {"a": None, "b": "text"} and sample["streams"]["a"] == b"x"


# ---- the stage on real shards ------------------------------------------------------------------


def _dataset(store, spec, seed=0):
    """Synthetic samples of `spec` written as a real dataset version by shard.write_shards."""
    samples = make_samples(spec, 72, seed=seed, sessions=12)
    store.put_bytes("aligned/part-000.parquet", samples_table(spec, samples).to_parquet())
    return write_shards(
        store, spec, ["aligned/part-000.parquet"], None, ShardConfig(samples_per_shard=16),
        window_s=1.0,
    ), samples  # fmt: skip


class Trained:  # train.TrainResult's shape, as far as the evaluation reads it
    def __init__(self, model_id, streams, key):
        self.model_id, self.streams, self.checkpoint_key = model_id, streams, key


def _train(store, tmp_path, spec, samples, plan):
    out = []
    for model_id, streams, steps in plan:
        model = fit_tiny(tiny_classifier(spec, streams, seed=3), samples, steps)
        path = save_tiny(model, tmp_path / f"{model_id}.pt")
        store.put_file(f"models/{model_id}.pt", path)
        out.append(Trained(model_id, streams, f"models/{model_id}.pt"))
    return out


def test_evaluate_models_on_shards(tmp_path):
    spec = demo_spec()
    store = open_store(str(tmp_path / "store"))
    manifest, samples = _dataset(store, spec)
    streams = list(spec.streams)
    trained = _train(
        store, tmp_path, spec, samples, [("fused", streams, 40), (streams[0], streams[:1], 0)]
    )
    cfg = CFG.model_copy(update={"latency_samples": 3})
    rep = evaluate_models(store, manifest, trained, cfg, "runs/r1/evaluation")
    n_test = manifest.splits["test"].n_samples
    assert rep.headline["dataset_version"] == manifest.version and rep.headline["n_test"] == n_test
    assert rep.headline["lift"] > 0  # 40 steps beat an untrained model on unseen samples
    assert set(rep.robustness["removed"]) == set(streams)
    assert rep.models["n_params"].gt(0).all() and rep.models["latency_p95_ms"].gt(0).all()
    assert rep.labels == list(LABELS) and list(rep.per_class["label"].unique()) == list(LABELS)
    html = store.get_text("runs/r1/evaluation/report.html")
    assert html.count("data:image/png;base64,") == 6  # + stream reliance
    assert store.get_bytes("runs/r1/evaluation/plots/reliability.png")[:4] == b"\x89PNG"
    back = EvaluationReport.from_json(store.get_text("runs/r1/evaluation/report.json"))
    assert back.headline["n_test"] == n_test and back.labels == list(LABELS)


def test_a_non_demo_spec_drives_classes_slices_and_robustness(tmp_path):
    """Nothing of the demo: a video + 6-channel IMU dataset with 3 classes and a `device` slice."""
    spec = other_spec()
    store = open_store(str(tmp_path / "store"))
    manifest, samples = _dataset(store, spec, seed=4)
    trained = _train(
        store, tmp_path, spec, samples, [("fused", ["wrist_video", "imu"], 30), ("imu", ["imu"], 5)]
    )
    # slices: null in the config -> the spec's metadata.slices
    cfg = EvaluateConfig(n_boot=50, latency_samples=2, min_slice_n=1)
    rep = evaluate_models(store, manifest, trained, cfg, "runs/r2/evaluation")
    assert rep.labels == ["idle", "walk", "run"]
    assert set(rep.slices["column"]) == {"device"}
    assert set(rep.slices["value"]) == {"device_a", "device_b"}
    assert set(rep.robustness["removed"]) == {"wrist_video", "imu"}
    assert np.asarray(rep.confusion["fused"]).shape == (3, 3)
    assert set(rep.models["model_id"]) == {"fused", "imu"}
    # an explicit override wins over the spec
    rep2 = evaluate_models(
        store, manifest, trained, cfg.model_copy(update={"slices": ["firmware"]}), "runs/r3/e"
    )
    assert set(rep2.slices["column"]) == {"firmware"}


def test_a_model_trained_on_another_spec_is_refused(tmp_path):
    from modalops.dataset.spec import SpecError

    spec, other = demo_spec(), other_spec()
    store = open_store(str(tmp_path / "store"))
    manifest, _ = _dataset(store, other, seed=1)
    model = tiny_classifier(spec)
    store.put_file("models/fused.pt", save_tiny(model, tmp_path / "fused.pt"))
    with pytest.raises(SpecError, match="does not match the spec the model fused was trained on"):
        evaluate_models(
            store, manifest, [Trained("fused", list(spec.streams), "models/fused.pt")],
            EvaluateConfig(n_boot=10), "runs/r4/evaluation",
        )  # fmt: skip


# ---- the stage streams: each split read once, one batch of raw samples at a time ---------------


def _spy_report(monkeypatch):
    """Capture what evaluate_models hands build_report: the outputs and both truths."""
    import modalops.evaluate.evaluation as evaluation

    seen = {}
    real = evaluation.build_report

    def spy(outputs, val, test, *args, **kwargs):
        seen.update(outputs=outputs, val=val, test=test)
        return real(outputs, val, test, *args, **kwargs)

    monkeypatch.setattr(evaluation, "build_report", spy)
    return seen


def test_streamed_evaluation_equals_scoring_each_split_at_once(tmp_path, monkeypatch):
    from modalops.evaluate.evaluation import count_parameters, load_model, truth_from_samples
    from modalops.shard import iter_raw_samples
    from modalops.train.models import predict_proba

    spec = demo_spec()
    store = open_store(str(tmp_path / "store"))
    manifest, samples = _dataset(store, spec)
    streams = list(spec.streams)
    trained = _train(
        store, tmp_path, spec, samples, [("fused", streams, 5), (streams[0], streams[:1], 0)]
    )
    # 5 per batch: val (12) and test (18) are each streamed in several batches, the last short
    cfg = CFG.model_copy(update={"batch_size": 5, "latency_samples": 2})
    assert manifest.splits["test"].n_samples > 2 * cfg.batch_size
    assert manifest.splits["val"].n_samples % cfg.batch_size and manifest.splits["val"].n_samples
    seen = _spy_report(monkeypatch)
    rep = evaluate_models(store, manifest, trained, cfg, "runs/r5/evaluation")

    # the reference: every sample of a split in memory, scored in one call (the former code)
    val = list(iter_raw_samples(store, manifest, "val"))
    test = list(iter_raw_samples(store, manifest, "test"))
    for got, tr in zip(seen["outputs"], trained, strict=True):
        model = load_model(store, tr.checkpoint_key, tr.model_id)
        assert got.model_id == tr.model_id and got.streams == tr.streams
        np.testing.assert_array_equal(got.val_probs, predict_proba(model, val, cfg.batch_size))
        np.testing.assert_array_equal(got.test_probs, predict_proba(model, test, cfg.batch_size))
        expected = streams if tr.model_id == "fused" else []
        assert sorted(got.removed) == sorted(expected)
        for name in expected:
            dropped = [drop_stream(s, name) for s in test]
            np.testing.assert_array_equal(
                got.removed[name], predict_proba(model, dropped, cfg.batch_size)
            )
        assert got.n_params == count_parameters(model) > 0
        assert len(got.latency_ms) == cfg.latency_samples
    for got, raws in ((seen["val"], val), (seen["test"], test)):
        want = truth_from_samples(raws)
        np.testing.assert_array_equal(got.labels, want.labels)
        np.testing.assert_array_equal(got.groups, want.groups)
        pd.testing.assert_frame_equal(got.meta, want.meta)
    assert rep.headline["n_test"] == len(test) and rep.headline["n_val"] == len(val)


def test_evaluation_reads_each_split_once_holding_one_batch(tmp_path, monkeypatch):
    import modalops.shard

    spec = demo_spec()
    store = open_store(str(tmp_path / "store"))
    manifest, samples = _dataset(store, spec, seed=2)
    streams = list(spec.streams)
    trained = _train(
        store, tmp_path, spec, samples, [("fused", streams, 0), (streams[0], streams[:1], 0)]
    )
    cfg = CFG.model_copy(update={"batch_size": 3, "latency_samples": 2})
    reads, count = [], {"alive": 0, "max": 0, "yielded": 0}

    class Tracked(dict):  # a raw sample that counts itself while alive
        def __init__(self, raw):
            super().__init__(raw)
            count["alive"] += 1
            count["yielded"] += 1
            count["max"] = max(count["max"], count["alive"])

        def __del__(self):
            count["alive"] -= 1

    real = modalops.shard.iter_raw_samples

    def counting(store, manifest, split):
        reads.append(split)
        for raw in real(store, manifest, split):
            yield Tracked(raw)

    monkeypatch.setattr(modalops.shard, "iter_raw_samples", counting)
    evaluate_models(store, manifest, trained, cfg, "runs/r6/evaluation")
    n_val, n_test = manifest.splits["val"].n_samples, manifest.splits["test"].n_samples
    assert sorted(reads) == ["test", "val"] and count["yielded"] == n_val + n_test
    # the former code held both splits (30 samples) at once
    assert count["max"] <= cfg.batch_size + cfg.latency_samples < n_test


def test_an_empty_split_is_refused_before_any_model_is_loaded(tmp_path):
    import dataclasses

    spec = demo_spec()
    store = open_store(str(tmp_path / "store"))
    manifest, _ = _dataset(store, spec, seed=3)
    # no checkpoint behind the key: loading a model would raise FileNotFoundError instead
    missing = [Trained("fused", list(spec.streams), "models/missing.pt")]
    for split, name in (("test", "test"), ("val", "validation")):
        splits = dict(manifest.splits)
        splits[split] = dataclasses.replace(splits[split], shards=[], n_samples=0)
        empty = dataclasses.replace(manifest, splits=splits)
        with pytest.raises(ValueError, match=f"the {name} split is empty"):
            evaluate_models(store, empty, missing, EvaluateConfig(n_boot=10), "runs/r7/e")
