"""The pyfunc round trip: log → register → load models:/name@champion → predict, plus the gate
refusing a deliberately worse challenger after re-scoring the champion on the same samples."""

from __future__ import annotations

import base64
import io

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from modalops.evaluation import EvaluationReport
from modalops.models import MultimodalClassifier, save_checkpoint
from modalops.preprocess import raw_to_tensors
from modalops.raw_layout import encode_wav
from modalops.registry import RescoringSet, log_and_register
from modalops.schema import LABELS
from modalops.serving import outputs_frame, rows_to_raw


def _jpeg(level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), level, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _wav(freq: float) -> bytes:
    x = (np.sin(np.arange(16000) * freq / 16000 * 2 * np.pi) * 8000).astype("<i2")
    return encode_wav(x, 16000)


def make_samples(n: int, seed: int = 0) -> list[dict]:
    """Tiny raw samples whose class shows in every modality (brightness, pitch, vibration)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y = i % 4
        out.append(
            {
                "key": f"s{i % 4}__{i:06d}",
                "camera": _jpeg(30 + 60 * y),
                "audio": _wav(300 + 900 * y),
                "vibration": (rng.normal(size=(100, 3)) * (0.2 + y)).astype(np.float32),
                "notes": ["all normal", "person near press", "grinding noise", "close call"][y],
                "label_index": y,
                "meta": {"site": "A" if i % 3 else "B", "lighting": "day" if i % 2 else "night"},
            }
        )
    return out


def fit_tiny(samples, steps: int, seed: int = 0) -> MultimodalClassifier:
    torch.manual_seed(seed)
    model = MultimodalClassifier(
        ["camera", "audio", "vibration", "notes"], hidden_dim=4, n_classes=4
    )
    decoded = [raw_to_tensors(s) for s in samples]
    inputs = {m: torch.stack([d[0][m] for d in decoded]) for m in decoded[0][0]}
    presence = torch.stack([d[1] for d in decoded])
    y = torch.tensor([s["label_index"] for s in samples])
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs, presence), y).backward()
        opt.step()
    return model.eval()


def tiny_report(temperature=1.0, threshold=0.0, flagged=()) -> EvaluationReport:
    slices = pd.DataFrame(
        [{"column": s.split("=")[0], "value": s.split("=")[1], "flagged": True} for s in flagged],
        columns=["column", "value", "flagged"],
    )
    return EvaluationReport(
        headline={"fused_macro_f1": 0.9},
        models=pd.DataFrame(),
        slices=slices,
        calibration={"temperature": temperature},
        abstention={"threshold": threshold},
    )


def test_outputs_frame_calibrates_and_abstains():
    logits = np.array([[4.0, 0.0, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0]])
    out = outputs_frame(logits, list(LABELS), temperature=2.0, threshold=0.5)
    # softmax([2, 0, 0, 0]) = e^2 / (e^2 + 3)
    assert out["probability"][0] == pytest.approx(np.e**2 / (np.e**2 + 3))
    assert out["label"].tolist() == ["normal", "normal"]
    assert out["abstained"].tolist() == [False, True]
    assert out[[f"prob_{c}" for c in LABELS]].sum(axis=1).tolist() == pytest.approx([1, 1])


def test_rows_to_raw_accepts_bytes_base64_and_missing():
    jpg = _jpeg(10)
    frame = pd.DataFrame(
        {
            "camera": [jpg, base64.b64encode(jpg).decode(), None],
            "audio": [None, "", None],
            "vibration": [[[0.0, 1.0, 2.0]], None, np.nan],
            "notes": ["x", None, ""],
        }
    )
    raws = rows_to_raw(frame)
    assert raws[0]["camera"] == jpg and raws[1]["camera"] == jpg and raws[2]["camera"] is None
    assert raws[1]["audio"] is None and raws[2]["vibration"] is None
    with pytest.raises(ValueError, match="unknown columns"):
        rows_to_raw(pd.DataFrame({"lidar": [1]}))


def test_round_trip_champion_and_worse_challenger_refused(tmp_path):
    train, test = make_samples(16, seed=0), make_samples(16, seed=1)
    good = fit_tiny(train, steps=120)
    save_checkpoint(good, tmp_path / "good.pt", {"model_id": "fused"})
    save_checkpoint(fit_tiny(train, steps=0, seed=3), tmp_path / "bad.pt", {"model_id": "fused"})
    data = RescoringSet.from_raw_samples(test, slices=["site", "lighting"])
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

    first = log_and_register(checkpoint_path=tmp_path / "good.pt", report=tiny_report(), **common)
    assert first.promoted and first.aliases == ["challenger", "champion"]

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/tiny@champion")
    pred = model.predict(data.inputs)
    assert set(pred["label"]) <= set(LABELS) and len(pred) == len(test)
    truth = [LABELS[s["label_index"]] for s in test]
    assert (pred["label"] == truth).mean() > 0.5  # learned something real on unseen samples
    # a missing modality is an empty cell, not an error
    partial = model.predict(data.inputs.head(2).assign(camera=None, notes=""))
    assert len(partial) == 2

    run = mlflow.get_run(first.run_id)
    assert run.data.tags["dataset_version"] == "v1"
    assert run.data.tags["prefect_flow_run_id"] == "run-1"
    assert run.data.params["train.hidden_dim"] == "4"

    worse = log_and_register(
        checkpoint_path=tmp_path / "bad.pt",
        report=tiny_report(threshold=0.99, flagged=["site=A"]),
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
    assert tags["promotion.decision"] == "refused" and "gate.slice_site_A" in tags
    # the challenger's own abstention threshold travels with it
    challenger = mlflow.pyfunc.load_model("models:/tiny@challenger").predict(data.inputs)
    assert challenger["abstained"].all()
