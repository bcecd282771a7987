"""Models: tiny forward/backward, masking of absent modalities, dropout, checkpoint round-trip."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch.nn import functional as F

from modalops import preprocess
from modalops.models import (
    MultimodalClassifier,
    drop_modalities,
    load_classifier,
    macro_f1,
    predict_proba,
    save_checkpoint,
)


def _batch(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = {
        "camera": torch.rand(b, 3, 64, 64, generator=g),
        "audio": torch.rand(b, *preprocess.AUDIO_SHAPE, generator=g),
        "vibration": torch.randn(b, 3, 100, generator=g),
        "notes": torch.rand(b, preprocess.TEXT_DIM, generator=g),
    }
    return inputs, torch.ones(b, 4)


@pytest.mark.parametrize(
    "mods", [["camera", "audio", "vibration", "notes"], ["audio"], ["notes", "camera"]]
)
def test_forward_backward(mods):
    torch.manual_seed(0)
    model = MultimodalClassifier(mods, hidden_dim=4)
    inputs, presence = _batch()
    logits = model(inputs, presence)
    assert logits.shape == (3, 4)
    # a real loss: with BatchNorm, d(sum of logits)/d(conv weights) can vanish by construction
    F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    for m in mods:
        assert any(
            p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoders[m].parameters()
        )


def test_absent_modality_is_masked():
    torch.manual_seed(0)
    model = MultimodalClassifier(["camera", "vibration"], hidden_dim=4).eval()
    inputs, presence = _batch()
    presence[:, 0] = 0  # camera absent
    other = dict(inputs, camera=torch.rand(3, 3, 64, 64))
    assert torch.allclose(model(inputs, presence), model(other, presence))
    assert not torch.allclose(model(inputs, torch.ones(3, 4)), model(other, torch.ones(3, 4)))
    # presence columns for modalities the model does not use are ignored
    presence2 = presence.clone()
    presence2[:, 1] = 0
    assert torch.allclose(model(inputs, presence), model(inputs, presence2))


def test_modality_dropout_never_hides_everything():
    presence = torch.ones(2000, 4)
    presence[:1000, 1:] = 0  # first half has only the camera
    g = torch.Generator().manual_seed(1)
    out = drop_modalities(presence, 0.5, [0, 1, 2, 3], generator=g)
    assert (out.sum(dim=1) >= 1).all()
    assert torch.equal(out[:1000], presence[:1000])  # the only modality is kept
    rate = 1 - out[1000:].mean().item()
    assert 0.4 < rate < 0.55  # ~p, slightly less because all-dropped rows are restored
    assert torch.equal(drop_modalities(presence, 0.5, [2]), presence)


def test_macro_f1_against_hand_computed():
    preds = torch.tensor([0, 0, 1, 1, 2])
    target = torch.tensor([0, 1, 1, 1, 3])
    # class 0: tp1 fp1 fn0 → 2/3; class 1: tp2 fp0 fn1 → 4/5; class 2: fp1 → 0; class 3: fn1 → 0
    assert macro_f1(preds, target, 4) == pytest.approx((2 / 3 + 4 / 5) / 4)


def test_checkpoint_round_trip_and_torch_only_load(tmp_path):
    torch.manual_seed(0)
    model = MultimodalClassifier(["camera", "notes"], hidden_dim=4).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(model, path, {"dataset_version": "v-1"})
    loaded, info = load_classifier(path)
    inputs, presence = _batch()
    assert torch.allclose(model(inputs, presence), loaded(inputs, presence))
    assert (
        info["labels"] == ["normal", "proximity", "fault", "near_miss"]
        and info["meta"]["dataset_version"] == "v-1"
    )
    loaded2, _ = load_classifier(path.read_bytes())
    assert torch.allclose(loaded(inputs, presence), loaded2(inputs, presence))
    # the checkpoint holds only tensors and plain values: plain torch.load(weights_only=True) reads it
    code = f"import torch; s = torch.load({str(path)!r}, weights_only=True); print(s['config']['modalities'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['camera', 'notes']"
    with pytest.raises(ValueError, match="not a readable modalops checkpoint"):
        load_classifier(b"garbage")


def test_predict_proba_batches_raw_samples():
    torch.manual_seed(0)
    model = MultimodalClassifier(["notes"], hidden_dim=4)
    raws = [{"notes": f"note {i}"} for i in range(5)] + [{"notes": None}]
    probs = predict_proba(model, raws, batch_size=4)
    assert probs.shape == (6, 4)
    assert probs.sum(axis=1) == pytest.approx([1.0] * 6, abs=1e-5)
    assert predict_proba(model, []).shape == (0, 4)
