"""Models: encoders sized from the spec, masking of absent streams, dropout, checkpoint round-trip."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from modalops.testing.shards import other_spec, text_payload
from modalops.train.inputs import input_shapes
from modalops.train.models import (
    MultimodalClassifier,
    drop_streams,
    load_classifier,
    macro_f1,
    predict_proba,
    save_checkpoint,
)
from modalops_demo.names import demo_spec

SPEC = demo_spec()


def _batch(spec=SPEC, b=3, seed=0, window_s=1.0):
    g = torch.Generator().manual_seed(seed)
    shapes = input_shapes(spec, window_s)
    inputs = {name: torch.rand(b, *shape, generator=g) for name, shape in shapes.items()}
    return inputs, torch.ones(b, len(shapes))


@pytest.mark.parametrize(
    "streams", [["camera", "audio", "vibration", "notes"], ["audio"], ["notes", "camera"]]
)
def test_forward_backward(streams):
    torch.manual_seed(0)
    model = MultimodalClassifier(SPEC, streams, hidden_dim=4)
    assert model.streams == [s for s in SPEC.stream_names if s in streams]  # spec order
    inputs, presence = _batch()
    logits = model(inputs, presence)
    assert logits.shape == (3, 4)
    # a real loss: with BatchNorm, d(sum of logits)/d(conv weights) can vanish by construction
    F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    for s in streams:
        assert any(
            p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoders[s].parameters()
        )


def test_encoders_and_classes_come_from_the_spec():
    spec = other_spec()
    torch.manual_seed(0)
    model = MultimodalClassifier(spec, spec.stream_names, hidden_dim=4, window_s=2.0)
    assert model.n_classes == 3 and model.labels == ["rest", "reach", "grasp"]
    assert model.input_shapes == {
        "top_cam": (1, 32, 32),
        "side_cam": (1, 32, 32),
        "wrist_imu": (6, 100),
        "remarks": (64,),
    }
    assert model.encoders["top_cam"].net[0].in_channels == 1
    assert model.encoders["wrist_imu"].net[0].in_channels == 6
    assert model.encoders["remarks"].net[0].in_features == 64
    inputs, presence = _batch(spec, window_s=2.0)
    assert model(inputs, presence).shape == (3, 3)
    with pytest.raises(ValueError, match=r"streams \['camera'\]: expected a non-empty subset"):
        MultimodalClassifier(spec, ["camera"])


def test_absent_stream_is_masked():
    torch.manual_seed(0)
    model = MultimodalClassifier(SPEC, ["camera", "vibration"], hidden_dim=4).eval()
    inputs, presence = _batch()
    presence[:, 0] = 0  # the first stream is absent
    other = dict(inputs, camera=torch.rand(3, 3, 64, 64))
    assert torch.allclose(model(inputs, presence), model(other, presence))
    assert not torch.allclose(model(inputs, torch.ones(3, 4)), model(other, torch.ones(3, 4)))
    # presence columns for streams the model does not use are ignored
    presence2 = presence.clone()
    presence2[:, 1] = 0
    assert torch.allclose(model(inputs, presence), model(inputs, presence2))


def test_stream_dropout_never_hides_everything():
    presence = torch.ones(2000, 4)
    presence[:1000, 1:] = 0  # first half has only the first stream
    g = torch.Generator().manual_seed(1)
    out = drop_streams(presence, 0.5, [0, 1, 2, 3], generator=g)
    assert (out.sum(dim=1) >= 1).all()
    assert torch.equal(out[:1000], presence[:1000])  # the only stream is kept
    rate = 1 - out[1000:].mean().item()
    assert 0.4 < rate < 0.55  # ~p, slightly less because all-dropped rows are restored
    assert torch.equal(drop_streams(presence, 0.5, [2]), presence)


def test_macro_f1_against_hand_computed():
    preds = torch.tensor([0, 0, 1, 1, 2])
    target = torch.tensor([0, 1, 1, 1, 3])
    # class 0: tp1 fp1 fn0 → 2/3; class 1: tp2 fp0 fn1 → 4/5; class 2: fp1 → 0; class 3: fn1 → 0
    assert macro_f1(preds, target, 4) == pytest.approx((2 / 3 + 4 / 5) / 4)


@pytest.mark.parametrize("spec", [SPEC, other_spec()], ids=["demo", "other"])
def test_checkpoint_round_trip_and_torch_only_load(tmp_path, spec):
    torch.manual_seed(0)
    streams = [spec.stream_names[0], spec.stream_names[-1]]
    model = MultimodalClassifier(spec, streams, hidden_dim=4, window_s=2.0).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(model, path, {"dataset_version": "v-1"})
    loaded, info = load_classifier(path)
    inputs, presence = _batch(spec, window_s=2.0)
    assert torch.allclose(model(inputs, presence), loaded(inputs, presence))
    assert loaded.spec == spec and info["spec"] == spec
    assert loaded.spec.stream_names == spec.stream_names  # order is the presence order
    assert loaded.streams == info["streams"] == streams
    assert loaded.labels == info["labels"] == spec.labels.classes
    assert loaded.window_s == info["window_s"] == 2.0
    assert info["meta"]["dataset_version"] == "v-1"
    loaded2, _ = load_classifier(path.read_bytes())
    assert torch.allclose(loaded(inputs, presence), loaded2(inputs, presence))
    # the checkpoint holds only tensors and plain values: plain torch.load(weights_only=True) reads it
    code = (
        f"import torch; s = torch.load({str(path)!r}, weights_only=True); "
        "print(s['streams'], s['labels'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{streams} {spec.labels.classes}"
    with pytest.raises(ValueError, match="not a readable modalops checkpoint"):
        load_classifier(b"garbage")


def test_old_checkpoints_are_refused_with_the_format(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": "modalops.classifier/1", "state_dict": {}}, str(path))
    with pytest.raises(
        ValueError,
        match=r"expected format modalops.classifier/2 or modalops.classifier/3, found 'modalops.classifier/1'",
    ):
        load_classifier(path)


def test_version_2_checkpoints_still_load_with_their_encoders(tmp_path):
    """A model registered before issue 22 (format /2, no encoder_version in its config) loads
    with the version-2 encoders and predicts what it predicted, so the promotion gate can still
    re-score an older champion."""
    import json

    torch.manual_seed(0)
    old = MultimodalClassifier(SPEC, SPEC.stream_names, hidden_dim=8, encoder_version=2).eval()
    assert not any("norm.running_mean" in k for k in old.state_dict())
    config = {k: v for k, v in old.config().items() if k != "encoder_version"}
    path = tmp_path / "v2.pt"
    torch.save(
        {
            "format": "modalops.classifier/2",
            "config": config,
            "labels": list(old.labels),
            "streams": list(old.streams),
            "window_s": old.window_s,
            "state_dict": old.state_dict(),
            "meta": json.loads("{}"),
        },
        str(path),
    )
    loaded, _ = load_classifier(path)
    assert loaded.encoder_version == 2
    inputs, presence = _batch(b=4)
    assert torch.allclose(loaded(inputs, presence), old(inputs, presence))
    # the current encoders carry normalisation buffers from the training data
    new = MultimodalClassifier(SPEC, SPEC.stream_names, hidden_dim=8)
    assert new.encoder_version == 3
    assert {"encoders.audio.norm.running_mean", "encoders.camera.norm.running_mean"} <= set(
        new.state_dict()
    )


def test_predict_proba_batches_raw_samples():
    torch.manual_seed(0)
    model = MultimodalClassifier(SPEC, ["notes"], hidden_dim=4)
    raws = [{"streams": {"notes": text_payload(i)}} for i in range(5)] + [
        {"streams": {"notes": None}}
    ]
    probs = predict_proba(model, raws, batch_size=4)
    assert probs.shape == (6, 4)
    assert probs.sum(axis=1) == pytest.approx([1.0] * 6, abs=1e-5)
    assert predict_proba(model, []).shape == (0, 4)
