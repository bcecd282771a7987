"""Preprocessing: fixed shapes, determinism, empty payloads, corrupt bytes."""

from __future__ import annotations

import io
import subprocess
import sys
import wave

import numpy as np
import pytest
import torch
from PIL import Image

from modalops import preprocess as pp


def _jpeg(size=64, color=(200, 10, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _wav(freq: float, rate=16000, seconds=1.0, channels=1) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    x = np.repeat(x[:, None], channels, axis=1)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.tobytes())
    return buf.getvalue()


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr, dtype=np.float32))
    return buf.getvalue()


def test_image_shape_range_and_resize():
    x = pp.decode_image(_jpeg())
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x[0].mean() > 0.7 and x[2].mean() < 0.15  # red stays red
    big = pp.decode_image(_jpeg(size=128))
    assert big.shape == (3, 64, 64) and torch.allclose(big, x, atol=0.05)


def test_audio_shape_and_whine_band():
    x = pp.decode_audio(_wav(2000))
    assert x.shape == pp.AUDIO_SHAPE and x.dtype == torch.float32
    # 2 kHz sits in the 125 Hz band 16; it must dominate the frame-averaged spectrum
    assert int(x.mean(dim=1).argmax()) == 16
    # resampled 8 kHz stereo, half a second: same shape, same band
    y = pp.decode_audio(_wav(2000, rate=8000, seconds=0.5, channels=2))
    assert y.shape == pp.AUDIO_SHAPE and int(y[:, :20].mean(dim=1).argmax()) == 16
    assert y[:, -10:].abs().max() < 1e-3  # padded to one second with silence


def test_vibration_bytes_array_list_nan_and_resample():
    t = np.arange(100) / 100
    arr = np.stack([np.sin(2 * np.pi * 7 * t), np.zeros(100), np.full(100, 9.81)], axis=1)
    a = pp.decode_vibration(_npy(arr))
    assert a.shape == (3, 100) and torch.allclose(a, torch.tensor(arr.T, dtype=torch.float32))
    assert torch.equal(pp.decode_vibration(arr), a)
    assert torch.equal(pp.decode_vibration(arr.tolist()), a)
    arr[5, 1] = np.nan
    assert pp.decode_vibration(arr)[1, 5] == 0.0
    assert pp.decode_vibration(arr[:97]).shape == (3, 100)
    assert pp.decode_vibration(np.ones((250, 3))).shape == (3, 100)


def test_text_hashing_is_deterministic_across_processes():
    a = pp.encode_text("Guard OPEN near press, guard")
    assert a.shape == (pp.TEXT_DIM,) and a.sum() > 0
    assert torch.equal(a, pp.encode_text("guard open near press guard"))
    assert not torch.equal(a, pp.encode_text("all normal"))
    code = "from modalops import preprocess as p; print(p.encode_text('guard open').nonzero().flatten().tolist())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(pp.encode_text("guard open").nonzero().flatten().tolist())


@pytest.mark.parametrize("empty", [None, b"", float("nan")])
def test_empty_payloads_are_absent(empty):
    tensors, presence = pp.raw_to_tensors(
        {"camera": empty, "audio": empty, "vibration": empty, "notes": "  "}
    )
    assert presence.tolist() == [0.0, 0.0, 0.0, 0.0]
    assert tensors["camera"].shape == (3, 64, 64) and tensors["camera"].abs().sum() == 0
    assert tensors["audio"].shape == pp.AUDIO_SHAPE and tensors["audio"].abs().sum() == 0
    assert tensors["vibration"].abs().sum() == 0 and tensors["notes"].abs().sum() == 0


def test_raw_to_tensors_presence_and_determinism():
    raw = {
        "camera": _jpeg(),
        "audio": _wav(300),
        "vibration": _npy(np.ones((100, 3))),
        "notes": "x",
    }
    t1, p1 = pp.raw_to_tensors(raw)
    t2, p2 = pp.raw_to_tensors(dict(raw))
    assert p1.tolist() == [1.0, 1.0, 1.0, 1.0] and torch.equal(p1, p2)
    assert all(torch.equal(t1[k], t2[k]) for k in pp.MODALITIES)
    _, p3 = pp.raw_to_tensors({"camera": raw["camera"], "notes": None})
    assert p3.tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"camera": b"\xff\xd8not a jpeg"}, "camera: payload is not a decodable image"),
        ({"camera": _jpeg()[:60]}, "camera"),
        ({"audio": b"RIFF1234WAVEjunk"}, "audio: payload is not a readable WAV"),
        ({"vibration": b"\x93NUMPYgarbage"}, "vibration: payload is not a readable .npy"),
        ({"vibration": _npy(np.ones((10, 2)))}, r"vibration: expected an \(n, 3\) array"),
    ],
)
def test_corrupt_bytes_raise_naming_the_modality(raw, match):
    with pytest.raises(ValueError, match=match):
        pp.raw_to_tensors(raw)


def test_preprocess_imports_nothing_from_the_package():
    code = (
        "import sys; import modalops.preprocess; "
        "print(sorted(m for m in sys.modules if m.startswith('modalops')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['modalops', 'modalops.preprocess']"


def test_raw_to_tensors_decodes_only_the_requested_modalities():
    raw = {"camera": b"corrupt", "audio": _wav(300), "vibration": None, "notes": "x"}
    tensors, presence = pp.raw_to_tensors(raw, ["audio"])  # the corrupt camera is never decoded
    assert presence.tolist() == [1.0, 1.0, 0.0, 1.0]
    assert tensors["audio"].abs().sum() > 0 and tensors["camera"].abs().sum() == 0
    assert tensors["notes"].abs().sum() == 0
