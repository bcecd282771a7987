"""Inputs: each kind's codec gives fixed shapes from the spec; absent, corrupt and serving inputs."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import wave

import numpy as np
import pytest
import torch
from PIL import Image

from modalops.kinds import get_kind
from modalops.testing.shards import other_spec
from modalops.train.inputs import input_shapes, raw_to_tensors
from modalops_demo.names import demo_spec

SPEC = demo_spec()


def _codec(kind: str):
    return get_kind(kind).codec


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


def test_image_shape_range_resize_and_grey():
    params = SPEC.params("camera")
    x = _codec("image").decode(_jpeg(), params, 1.0)
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x[0].mean() > 0.7 and x[2].mean() < 0.15  # red stays red
    big = _codec("image").decode(_jpeg(size=128), params, 1.0)
    assert big.shape == (3, 64, 64) and torch.allclose(big, x, atol=0.05)
    grey = other_spec().params("top_cam")
    g = _codec("image").decode(_jpeg(size=100), grey, 1.0)
    assert g.shape == (1, 32, 32) and 0.2 < g.mean() < 0.5  # luma of that red
    assert _codec("video").decode is _codec("image").decode  # one codec, reused


def test_audio_shape_and_whine_band():
    params = SPEC.params("audio")
    codec = _codec("audio")
    x = codec.decode(_wav(2000), params, 1.0)
    assert x.shape == codec.shape(params, 1.0) == (64, 65) and x.dtype == torch.float32
    # 2 kHz sits in the 125 Hz band 16; it must dominate the frame-averaged spectrum
    assert int(x.mean(dim=1).argmax()) == 16
    # resampled 8 kHz stereo, half a second: same shape, same band
    y = codec.decode(_wav(2000, rate=8000, seconds=0.5, channels=2), params, 1.0)
    assert y.shape == (64, 65) and int(y[:, :20].mean(dim=1).argmax()) == 16
    assert y[:, -10:].abs().max() < 1e-3  # padded to the window with silence
    # the window length and the spec's rate/bands/frames set the shape
    other = params.model_copy(update={"sample_rate": 8000, "bands": 32, "frames_per_s": 50})
    z = codec.decode(_wav(1000, rate=16000, seconds=2.0), other, 2.0)
    assert z.shape == codec.shape(other, 2.0) == (32, 101)
    assert int(z.mean(dim=1).argmax()) == 8  # 1 kHz in 125 Hz bands of a 4 kHz Nyquist


def test_timeseries_bytes_array_list_nan_resample_and_channels():
    params = SPEC.params("vibration")
    codec = _codec("timeseries")
    t = np.arange(100) / 100
    arr = np.stack([np.sin(2 * np.pi * 7 * t), np.zeros(100), np.full(100, 9.81)], axis=1)
    a = codec.decode(_npy(arr), params, 1.0)
    assert a.shape == (3, 100) and torch.allclose(a, torch.tensor(arr.T, dtype=torch.float32))
    assert torch.equal(codec.decode(arr, params, 1.0), a)
    assert torch.equal(codec.decode(arr.tolist(), params, 1.0), a)
    arr[5, 1] = np.nan
    assert codec.decode(arr, params, 1.0)[1, 5] == 0.0
    assert codec.decode(arr[:97], params, 1.0).shape == (3, 100)
    assert codec.decode(np.ones((250, 3)), params, 1.0).shape == (3, 100)
    imu = other_spec().params("wrist_imu")  # 6 channels at 50 Hz
    assert codec.decode(np.ones((90, 6)), imu, 2.0).shape == codec.shape(imu, 2.0) == (6, 100)
    with pytest.raises(
        ValueError, match=r"timeseries: expected an \(n, 6\) array of channels \['acc_x'"
    ):
        codec.decode(np.ones((90, 3)), imu, 2.0)


def test_text_hashing_is_deterministic_across_processes():
    params = SPEC.params("notes")
    codec = _codec("text")
    a = codec.decode("Guard OPEN near press, guard", params, 1.0)
    assert a.shape == (256,) and a.sum() > 0
    assert torch.equal(a, codec.decode("guard open near press guard", params, 1.0))
    assert not torch.equal(a, codec.decode("all quiet", params, 1.0))
    assert codec.decode("guard", other_spec().params("remarks"), 1.0).shape == (64,)
    code = (
        "from modalops.kinds import get_kind; from modalops.kinds.text.params import Params; "
        "print(get_kind('text').codec.decode('guard open', Params(), 1.0).nonzero().flatten().tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(
        codec.decode("guard open", params, 1.0).nonzero().flatten().tolist()
    )


@pytest.mark.parametrize("empty", [None, b"", float("nan")])
def test_empty_payloads_are_absent(empty):
    streams = {"camera": empty, "audio": empty, "vibration": empty, "notes": "  "}
    tensors, presence = raw_to_tensors(streams, SPEC, 1.0)
    assert presence.tolist() == [0.0, 0.0, 0.0, 0.0]
    assert tensors["camera"].shape == (3, 64, 64) and tensors["camera"].abs().sum() == 0
    assert tensors["audio"].shape == (64, 65) and tensors["audio"].abs().sum() == 0
    assert tensors["vibration"].abs().sum() == 0 and tensors["notes"].abs().sum() == 0


def test_raw_to_tensors_presence_order_and_determinism():
    streams = {
        "camera": _jpeg(),
        "audio": _wav(300),
        "vibration": _npy(np.ones((100, 3))),
        "notes": "x",
    }
    t1, p1 = raw_to_tensors(streams, SPEC, 1.0)
    t2, p2 = raw_to_tensors(dict(streams), SPEC, 1.0)
    assert list(t1) == SPEC.stream_names  # spec order
    assert p1.tolist() == [1.0, 1.0, 1.0, 1.0] and torch.equal(p1, p2)
    assert all(torch.equal(t1[k], t2[k]) for k in SPEC.stream_names)
    _, p3 = raw_to_tensors({"camera": streams["camera"], "notes": None}, SPEC, 1.0)
    assert p3.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert input_shapes(other_spec(), 2.0) == {
        "top_cam": (1, 32, 32),
        "side_cam": (1, 32, 32),
        "wrist_imu": (6, 100),
        "remarks": (64,),
    }


@pytest.mark.parametrize(
    "streams, match",
    [
        (
            {"camera": b"\xff\xd8not a jpeg"},
            "stream 'camera' \\(image: payload is not a decodable image",
        ),
        ({"camera": _jpeg()[:60]}, "stream 'camera' \\(image"),
        ({"audio": b"RIFF1234WAVEjunk"}, "stream 'audio' \\(audio: payload is not a readable WAV"),
        (
            {"vibration": b"\x93NUMPYgarbage"},
            "stream 'vibration' \\(timeseries: payload is not a readable .npy",
        ),
        (
            {"vibration": _npy(np.ones((10, 2)))},
            r"stream 'vibration' \(timeseries: expected an \(n, 3\) array",
        ),
    ],
)
def test_corrupt_bytes_raise_naming_the_stream_and_kind(streams, match):
    with pytest.raises(ValueError, match=match):
        raw_to_tensors(streams, SPEC, 1.0)


def test_to_payload_turns_serving_inputs_into_stored_payloads():
    jpeg = _jpeg()
    image = _codec("image")
    assert image.to_payload(jpeg) == jpeg
    assert image.to_payload(base64.b64encode(jpeg).decode()) == jpeg
    assert image.to_payload(None) is None and image.to_payload(float("nan")) is None
    with pytest.raises(ValueError, match="image: text input is not base64"):
        image.to_payload("not base64 !!")
    wav = _wav(300)
    assert _codec("audio").to_payload(base64.b64encode(wav).decode()) == wav
    ts = _codec("timeseries")
    rows = [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    stored = ts.to_payload(rows)
    assert (
        np.load(io.BytesIO(stored)).tolist() == rows
        and np.load(io.BytesIO(stored)).dtype == np.float32
    )
    assert ts.to_payload(np.asarray(rows)) == stored and ts.to_payload(stored) == stored
    assert ts.to_payload([]) is None
    text = _codec("text")
    assert (
        text.to_payload(None) == ""
        and text.to_payload(b"hi") == "hi"
        and text.to_payload("x") == "x"
    )


def test_codecs_and_encoders_import_no_stage_code():
    """The served model decodes with the kinds' codec/encoder modules: they must not pull in
    the stages (shards, training, Lightning, pandas...)."""
    mods = [
        f"modalops.kinds.{k}.{m}"
        for k in ("image", "video", "audio", "timeseries", "text")
        for m in ("codec", "encoder")
    ]
    code = (
        "import sys, importlib; "
        f"[importlib.import_module(m) for m in {mods!r}]; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('modalops', 'lightning', 'pandas', 'pyarrow', 'webdataset', 'prefect', 'mlflow')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout.strip())  # noqa: S307 - our own subprocess's printed list
    assert not [m for m in loaded if not m.startswith("modalops")], loaded
    allowed = {
        "modalops",
        "modalops.kinds",
        "modalops.kinds.base",
        "modalops.dataset",
        "modalops.dataset.errors",
    }
    stray = [m for m in loaded if m not in allowed and not m.startswith("modalops.kinds.")]
    assert not stray, stray


def test_raw_to_tensors_decodes_only_the_wanted_streams():
    streams = {"camera": b"corrupt", "audio": _wav(300), "vibration": None, "notes": "x"}
    tensors, presence = raw_to_tensors(
        streams, SPEC, 1.0, ["audio"]
    )  # the corrupt frame is never decoded
    assert presence.tolist() == [1.0, 1.0, 0.0, 1.0]
    assert tensors["audio"].abs().sum() > 0 and tensors["camera"].abs().sum() == 0
    assert tensors["notes"].abs().sum() == 0
    with pytest.raises(ValueError, match=r"streams \['lidar'\] are not in dataset spec"):
        raw_to_tensors(streams, SPEC, 1.0, ["lidar"])
