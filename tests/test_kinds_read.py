"""Kind readers: each bad file gets a RawDataError naming the file (and line) and the problem."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from modalops.align.session import align_session
from modalops.config.align import AlignConfig
from modalops.dataset import layout
from modalops.dataset.errors import RawDataError
from modalops.dataset.layout import ClockModel, load_session, read_labels, read_sessions
from modalops.dataset.spec import parse_spec
from modalops.kinds import get_kind
from modalops.kinds.audio.wav import decode_wav, encode_wav
from modalops.store import LocalStore
from modalops.testing.recordings import (
    encode_flac,
    encode_video,
    make_session,
    render_frame,
    synthetic_spec,
    write_recordings,
    write_session,
)

SPEC_DICT = synthetic_spec()
SPEC = parse_spec(SPEC_DICT)


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


@pytest.fixture
def raw(tmp_path) -> LocalStore:
    store = LocalStore(tmp_path / "raw")
    sid = "s1"
    store.put_text("sessions.csv", "session_id,plant,shift,operator\ns1,p1,day,op-1\n")
    clock = {"streams": {
        "front": {"offset_s": 0, "drift_ppm": 0},
        "mic": {"offset_s": 0.5, "drift_ppm": 0, "start_s": -0.2, "sample_rate": 16000},
        "imu": {"offset_s": -1.0, "drift_ppm": 20},
    }}  # fmt: skip
    store.put_text(layout.session_key(SPEC, sid, "clock.json"), json.dumps(clock))
    store.put_text(
        layout.session_key(SPEC, sid, "front/index.csv"), "t,file\n0.0,f0.jpg\n0.25,f1.jpg\n"
    )
    store.put_bytes(
        layout.session_key(SPEC, sid, "mic.wav"), encode_wav(np.zeros(16000, np.float32), 16000)
    )
    t = np.arange(400) / 100
    imu = pd.DataFrame({"t": t, "gx": 0.0, "gy": 0.0, "gz": 1.0}).astype("float32")
    imu["t"] = t
    store.put_bytes(layout.session_key(SPEC, sid, "imu.parquet"), parquet_bytes(imu))
    store.put_text(
        layout.session_key(SPEC, sid, "log.jsonl"), '{"t": 3, "text": "b"}\n{"t": 1, "text": "a"}\n'
    )
    store.put_text(
        layout.session_key(SPEC, sid, "labels.csv"), "start_s,end_s,label\n0,2,idle\n2,4,alarm\n"
    )
    return store


def _load(store, spec=SPEC, sid="s1"):
    return load_session(store, spec, sid, {})


def test_clean_session_loads(raw):
    table = read_sessions(raw, SPEC)
    session = load_session(raw, SPEC, "s1", table.iloc[0].to_dict())
    assert not session.problems
    assert session.streams["front"].times.tolist() == [0.0, 0.25]
    assert session.streams["front"].files == [
        "sessions/s1/front/f0.jpg",
        "sessions/s1/front/f1.jpg",
    ]
    mic = session.streams["mic"]
    assert mic.sample_rate == 16000 and mic.start_s == -0.2 and mic.span() == (-0.2, 0.8)
    assert session.streams["imu"].values.shape == (400, 3)
    assert session.streams["log"].texts == ["a", "b"]  # coarse events are ordered, not rejected
    assert session.clocks["imu"] == ClockModel(-1.0, 20.0)
    assert session.clocks["front"] == ClockModel()  # the reference
    assert list(session.labels["label"]) == ["idle", "alarm"]


def test_clock_model_round_trip():
    clock = ClockModel(offset_s=2.5, drift_ppm=80)
    t = np.array([0.0, 100.0, 3600.0])
    assert np.allclose(clock.to_reference(clock.to_device(t)), t)
    assert clock.to_device(100.0) == pytest.approx(102.508)


def test_truncated_wav_names_file_and_problem():
    data = encode_wav(np.zeros(1000, np.float32), 16000)
    with pytest.raises(RawDataError, match="truncated WAV") as err:
        decode_wav(data[:-500], "x/audio.wav")
    assert err.value.path == "x/audio.wav"


def test_wrong_sample_rate_is_refused(raw):
    raw.put_bytes(layout.session_key(SPEC, "s1", "mic.wav"), encode_wav(np.zeros(8000), 8000))
    session = _load(raw)
    assert session.streams["mic"] is None
    ((name, err),) = session.problems
    assert name == "mic" and "sample rate 8000 Hz, the clock file says 16000 Hz" in str(err)
    assert err.path.endswith("mic.wav")


def test_out_of_order_and_duplicated_timestamps_name_the_line(raw):
    raw.put_text(layout.session_key(SPEC, "s1", "front/index.csv"), "t,file\n0.5,a\n0.25,b\n")
    raw.put_bytes(layout.session_key(SPEC, "s1", "imu.parquet"),
                  parquet_bytes(pd.DataFrame({"t": [0.0, 0.01, 0.01], "gx": 0.0, "gy": 0.0, "gz": 0.0})))  # fmt: skip
    problems = dict(_load(raw).problems)
    assert "out of order (first at line 3)" in str(problems["front"])
    assert "duplicated timestamps" in str(problems["imu"])


def test_missing_file_bad_labels_bad_text(raw):
    raw.delete(layout.session_key(SPEC, "s1", "imu.parquet"))
    session = _load(raw)
    assert session.streams["imu"] is None and "file is missing" in str(
        dict(session.problems)["imu"]
    )
    raw.put_text(layout.session_key(SPEC, "s1", "labels.csv"), "start_s,end_s,label\n3,2,idle\n")
    with pytest.raises(RawDataError, match="do not end after they start"):
        read_labels(raw, SPEC, "s1")
    raw.put_text(
        layout.session_key(SPEC, "s1", "labels.csv"), "start_s,end_s,label\n0,2,idle\n2,3,party\n"
    )
    with pytest.raises(RawDataError, match=r"unknown labels \['party'\] \(first at line 3\)"):
        read_labels(raw, SPEC, "s1")
    raw.put_text(layout.session_key(SPEC, "s1", "labels.csv"), "start_s,end_s,label\n0,2,idle\n")
    raw.put_text(
        layout.session_key(SPEC, "s1", "log.jsonl"), '{"t": 1, "text": "ok"}\n\n{"t": 1}\n'
    )
    err = dict(_load(raw).problems)["log"]
    assert "log.jsonl" in err.path and "line 3" in str(err)
    raw.put_bytes(
        layout.session_key(SPEC, "s1", "log.jsonl"),
        b'{"t": 1, "text": "ok"}\n{"t": 2, "text": "\xff"}\n',
    )
    assert "line 2: not UTF-8" in str(dict(_load(raw).problems)["log"])


def test_sessions_table_problems(tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(RawDataError, match="file is missing"):
        read_sessions(store, SPEC)
    store.put_text("sessions.csv", "session_id,plant\na,x\n")
    with pytest.raises(RawDataError, match=r"missing columns \['shift', 'operator'\]"):
        read_sessions(store, SPEC)


def _spec_with(name: str, stream: dict, **extra) -> dict:
    d = synthetic_spec(**extra)
    d["streams"][name] = stream
    return d


@pytest.mark.parametrize(("path", "unit", "scale"), [("imu/acc.csv", "ms", 1e3), ("imu/acc.parquet", "s", 1.0),
                                                     ("imu/acc.tsv", "us", 1e6)])  # fmt: skip
def test_timeseries_other_time_columns_units_and_formats(tmp_path, path, unit, scale):
    d = _spec_with("imu", {"kind": "timeseries", "path": path, "cue": "magnitude_envelope",
                           "params": {"time_column": "stamp", "time_unit": unit,
                                      "channels": ["wz", "wx"], "sample_rate": 50.0}})  # fmt: skip
    spec = parse_spec(d)
    store = LocalStore(tmp_path)
    t = 10.0 + np.arange(100) / 50.0
    df = pd.DataFrame(
        {"stamp": t * scale, "wx": np.arange(100.0), "wz": -np.arange(100.0), "other": 1}
    )
    from modalops.testing.recordings import table_bytes

    key = layout.session_key(spec, "s1", path)
    store.put_bytes(key, table_bytes(df, path))
    src = layout.stream_source(store, spec, "s1", "imu", {})
    s = get_kind("timeseries").read.read(src)
    np.testing.assert_allclose(s.times, t, atol=1e-9)
    assert s.values.shape == (100, 2) and s.values[5].tolist() == [-5.0, 5.0]  # spec channel order
    got = get_kind("timeseries").read.ingest(src)
    assert got.values["sample_rate"] == pytest.approx(50.0) and got.values["n_channels"] == 2
    # A declared channel the file lacks is named.
    store.put_bytes(key, table_bytes(df.drop(columns=["wz"]), path))
    with pytest.raises(RawDataError, match=r"missing columns \['wz'\]"):
        get_kind("timeseries").read.read(src)


def test_text_time_fields_and_units(tmp_path):
    d = _spec_with("log", {"kind": "text", "path": "events.jsonl", "cue": "none", "required": False,
                           "params": {"time_field": "ts_ms", "text_field": "word", "time_unit": "ms"}})  # fmt: skip
    spec = parse_spec(d)
    store = LocalStore(tmp_path)
    store.put_text(
        layout.session_key(spec, "s1", "events.jsonl"),
        '{"ts_ms": 2500, "word": "hi"}\n{"ts_ms": 500, "word": "yo"}\n',
    )
    s = get_kind("text").read.read(layout.stream_source(store, spec, "s1", "log", {}))
    assert s.times.tolist() == [0.5, 2.5] and s.texts == ["yo", "hi"]


def test_glob_path_pattern_matches_exactly_one_file(tmp_path):
    d = _spec_with("mic", {"kind": "audio", "path": "mic/*.wav", "cue": "rms_envelope"})
    spec = parse_spec(d)
    store = LocalStore(tmp_path)
    key = layout.session_key(spec, "s1", "mic/take-7.wav")
    store.put_bytes(key, encode_wav(np.zeros(800, np.float32), 8000))
    listing = store.list("sessions/s1")
    src = layout.stream_source(store, spec, "s1", "mic", {}, listing)
    assert src.key == key
    store.put_bytes(layout.session_key(spec, "s1", "mic/take-8.wav"), b"x")
    with pytest.raises(RawDataError, match="matches 2 files"):
        layout.stream_source(store, spec, "s1", "mic", {}, store.list("sessions/s1"))


def test_png_grey_frames_of_any_size_are_accepted(tmp_path):
    d = synthetic_spec()
    d["streams"]["front"]["params"].update(formats=["PNG"], channels=1)
    spec = parse_spec(d)
    store = LocalStore(tmp_path)
    session, frames, truth = make_session(spec, "s1", 10.0, 0, frame_size=48)
    write_session(store, spec, session, frames)
    src = layout.stream_source(store, spec, "s1", "front", {})
    got = get_kind("image").read.ingest(src)
    assert got.status == "ok" and got.values["width"] == 48 and got.values["n_channels"] == 1
    # A JPEG where only PNG is accepted is a bad frame, named by its file.
    store.put_bytes(
        session.streams["front"].files[3],
        frames[session.streams["front"].files[4]].replace(b"PNG", b"XXX", 1),
    )
    got = get_kind("image").read.ingest(src)
    assert got.values["n_bad_items"] == 1 and got.item_problems[0][0].endswith("000003.png")


def test_flac_audio_multichannel_is_averaged(tmp_path):
    d = _spec_with("mic", {"kind": "audio", "path": "mic.flac", "cue": "rms_envelope",
                           "params": {"sample_rate": 8000, "start_field": "t0"}})  # fmt: skip
    spec = parse_spec(d)
    store = LocalStore(tmp_path)
    x = (0.3 * np.sin(2 * np.pi * 200 * np.arange(8000) / 8000)).astype(np.float32)
    store.put_bytes(layout.session_key(spec, "s1", "mic.flac"), encode_flac(x, 8000, channels=2))
    src = layout.stream_source(store, spec, "s1", "mic", {"mic": {"t0": 1.5}})
    a = get_kind("audio").read.read(src)
    assert a.sample_rate == 8000 and a.start_s == 1.5 and a.samples.size == 8000
    np.testing.assert_allclose(a.samples, x, atol=1e-3)
    assert get_kind("audio").read.ingest(src).values["n_channels"] == 2


def test_video_frames_pts_and_window_payloads(tmp_path):
    d = _spec_with("side", {"kind": "video", "path": "side.mp4",
                            "params": {"fps": 8.0, "start_field": "start_s", "jpeg_quality": 80},
                            "cue": {"kind": "roi_brightness", "roi": [0.03125, 0.125, 0.875, 0.96875]}})  # fmt: skip
    spec = parse_spec(d)
    store = LocalStore(tmp_path)
    rng = np.random.default_rng(0)
    times = np.arange(24) / 8.0
    frames = np.stack([render_frame(i % 8 < 4, rng, 32) for i in range(24)])
    store.put_bytes(layout.session_key(spec, "s1", "side.mp4"), encode_video(frames, times))
    src = layout.stream_source(store, spec, "s1", "side", {"side": {"start_s": 2.0}})
    v = get_kind("video").read.read(src)
    np.testing.assert_allclose(v.times, times + 2.0, atol=1e-3)
    assert v.frames.shape == (24, 32, 32, 3)
    got = get_kind("video").read.ingest(src)
    assert got.status == "ok" and got.values["sample_rate"] == pytest.approx(8.0)
    assert (
        got.values["content_hash"]
        == __import__("hashlib").sha256(store.get_bytes(src.key)).hexdigest()
    )
    # Windows: the nearest frame, re-encoded as JPEG that decodes to the frame's size.
    from PIL import Image

    from modalops.kinds.base import WindowContext

    starts = np.arange(0.0, 3.0)
    present, why, build = get_kind("video").windows.window(
        v, lambda t: t + 2.0, starts, starts + 1, starts + 0.5, WindowContext(1.0), None
    )
    assert present.all()
    img = Image.open(io.BytesIO(build(1)))
    assert img.format == "JPEG" and img.size == (32, 32)
    env = get_kind("video").sync.envelope(v, spec.streams["side"].cue_spec, 50.0, None)
    assert env.values.max() > 0.9 and env.values.min() < 0.1  # the light turns on and off
    # A file that is not a video is quarantined with its name.
    store.put_bytes(src.key, b"not a video")
    with pytest.raises(RawDataError, match="side.mp4: not a decodable video"):
        get_kind("video").read.read(src)


def test_session_level_labels(tmp_path):
    d = synthetic_spec(
        labels={"classes": ["left", "right", "both"], "source": "session", "column": "hand"}
    )
    store = LocalStore(tmp_path)
    write_recordings(store, d, sessions=3, duration_s=12.0)
    spec = parse_spec(d)
    table = read_sessions(store, spec)
    assert table["hand"].tolist() == ["left", "right", "both"]
    session = load_session(store, spec, "rec-001", {}, table.iloc[1].to_dict())
    assert session.labels["label"].tolist() == ["right"]
    out = align_session(session, spec, AlignConfig(), store.get_bytes)
    assert len(out.samples) >= 10 and (out.samples["label"] == "right").all()
    with pytest.raises(RawDataError, match="unknown label 'up'"):
        read_labels(store, spec, "rec-001", {"hand": "up"})
