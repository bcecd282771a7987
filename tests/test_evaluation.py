"""The evaluation report: pure tables on synthetic predictions, then the stage on real shards."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import webdataset as wds

from modalops.config.evaluate import EvaluateConfig
from modalops.evaluation import (
    EvaluationReport,
    ModelOutputs,
    SplitTruth,
    build_report,
    evaluate_models,
)
from modalops.models import save_checkpoint
from modalops.schema import LABELS, SHARD_EXT
from modalops.shards import DatasetManifest, SplitInfo
from modalops.store import open_store

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
        [fused, camera], val, test, CFG.model_copy(update={"hourly_price_usd": 3.6})
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
        build_report([bad], val, test, CFG)


# ---- the stage on real shards ------------------------------------------------------------------


def _write_split(store, split, samples):
    buf = io.BytesIO()
    with wds.TarWriter(buf) as tar:
        for s in samples:
            session, window = s["key"].split("__")
            member = {
                "__key__": s["key"],
                "json": json.dumps(
                    {
                        "label": LABELS[s["label_index"]],
                        "label_index": s["label_index"],
                        "session_id": session,
                        "window_index": int(window),
                        "metadata": s["meta"],
                    }
                ).encode(),
                SHARD_EXT["camera"]: s["camera"],
                SHARD_EXT["audio"]: s["audio"],
                SHARD_EXT["notes"]: s["notes"].encode(),
            }
            npy = io.BytesIO()
            np.save(npy, s["vibration"])
            member[SHARD_EXT["vibration"]] = npy.getvalue()
            tar.write(member)
    key = f"datasets/v1/{split}-000000.tar"
    store.put_bytes(key, buf.getvalue())
    sessions = sorted({s["key"].split("__")[0] for s in samples})
    return SplitInfo([key], len(samples), sessions, {})


def test_evaluate_models_on_shards(tmp_path):
    from test_serving import fit_tiny, make_samples

    store = open_store(str(tmp_path / "store"))
    train, val, test = make_samples(16, 0), make_samples(12, 1), make_samples(12, 2)
    splits = {"val": _write_split(store, "val", val), "test": _write_split(store, "test", test)}
    manifest = DatasetManifest("v1", store.root, "datasets/v1", splits, {}, {})

    class Trained:  # training.TrainResult's shape
        def __init__(self, model_id, modalities, key):
            self.model_id, self.modalities, self.checkpoint_key = model_id, modalities, key

    trained = []
    for model_id, steps in (("fused", 40), ("camera", 0)):
        model = fit_tiny(train, steps)
        path = tmp_path / f"{model_id}.pt"
        save_checkpoint(model, path, {})
        store.put_file(f"models/{model_id}.pt", path)
        trained.append(
            Trained(model_id, ["camera", "audio", "vibration", "notes"], f"models/{model_id}.pt")
        )
    cfg = CFG.model_copy(update={"latency_samples": 3})
    rep = evaluate_models(store, manifest, trained, cfg, "runs/r1/evaluation")
    assert rep.headline["dataset_version"] == "v1" and rep.headline["n_test"] == 12
    assert rep.headline["lift"] > 0  # 40 steps beat an untrained model on unseen samples
    assert set(rep.robustness["removed"]) == {"camera", "audio", "vibration", "notes"}
    assert rep.models["n_params"].gt(0).all() and rep.models["latency_p95_ms"].gt(0).all()
    html = store.get_text("runs/r1/evaluation/report.html")
    assert html.count("data:image/png;base64,") == 5
    assert store.get_bytes("runs/r1/evaluation/plots/reliability.png")[:4] == b"\x89PNG"
    assert (
        EvaluationReport.from_json(store.get_text("runs/r1/evaluation/report.json")).headline[
            "n_test"
        ]
        == 12
    )
