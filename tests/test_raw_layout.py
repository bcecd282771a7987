"""Raw-layout readers: each bad file gets a RawDataError naming the file and the problem."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from modalops import schema
from modalops.raw_layout import (
    ClockModel,
    RawDataError,
    decode_wav,
    encode_wav,
    load_session,
    read_frames_index,
    read_labels,
    read_manifest,
    read_notes,
    read_vibration,
    session_key,
)
from modalops.store import LocalStore


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    return encode_wav(samples, rate)


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


@pytest.fixture
def raw(tmp_path) -> LocalStore:
    store = LocalStore(tmp_path / "raw")
    sid = "s1"
    store.put_text(
        schema.SESSIONS_MANIFEST,
        ",".join(schema.MANIFEST_COLUMNS) + "\ns1,st1,site_a,cam_x,mic_mems,day,op-1,4\n",
    )
    clock = {
        "reference": "camera",
        "streams": {
            "camera": {"offset_s": 0, "drift_ppm": 0},
            "audio": {"offset_s": 0.5, "drift_ppm": 0, "start_s": -0.2, "sample_rate": 16000},
            "vibration": {"offset_s": -1.0, "drift_ppm": 20},
            "notes": {"offset_s": 0, "drift_ppm": 0},
        },
    }
    store.put_text(session_key(sid, schema.CLOCK_FILE), json.dumps(clock))
    store.put_text(
        session_key(sid, schema.FRAMES_INDEX), "frame,t,file\n0,0.0,f0.jpg\n1,0.25,f1.jpg\n"
    )
    store.put_bytes(session_key(sid, schema.AUDIO_FILE), wav_bytes(np.zeros(16000, np.float32)))
    t = np.arange(400) / 100
    vib = pd.DataFrame({"t": t, "ax": 0.0, "ay": 0.0, "az": 1.0}).astype("float32")
    vib["t"] = t
    store.put_bytes(session_key(sid, schema.VIBRATION_FILE), parquet_bytes(vib))
    store.put_text(
        session_key(sid, schema.NOTES_FILE), '{"t": 3, "text": "b"}\n{"t": 1, "text": "a"}\n'
    )
    store.put_text(
        session_key(sid, schema.LABELS_FILE), "start_s,end_s,label\n0,2,normal\n2,4,fault\n"
    )
    return store


def test_clean_session_loads(raw):
    manifest = read_manifest(raw)
    session = load_session(raw, "s1", manifest.iloc[0].to_dict())
    assert not session.problems
    assert session.camera.times.tolist() == [0.0, 0.25]
    assert session.audio.sample_rate == 16000 and session.audio.start_s == -0.2
    assert session.vibration.values.shape == (400, 3)
    assert session.notes.texts == ["a", "b"]  # coarse notes are ordered, not rejected
    assert session.clocks["vibration"] == ClockModel(-1.0, 20.0)
    assert list(session.labels["label"]) == ["normal", "fault"]


def test_clock_model_round_trip():
    clock = ClockModel(offset_s=2.5, drift_ppm=80)
    t = np.array([0.0, 100.0, 3600.0])
    assert np.allclose(clock.to_reference(clock.to_device(t)), t)
    assert clock.to_device(100.0) == pytest.approx(102.508)


def test_truncated_wav_names_file_and_problem():
    data = wav_bytes(np.zeros(1000, np.float32))
    with pytest.raises(RawDataError, match="truncated WAV") as err:
        decode_wav(data[:-500], "x/audio.wav")
    assert err.value.path == "x/audio.wav"


def test_wrong_sample_rate_is_refused(raw):
    raw.put_bytes(session_key("s1", schema.AUDIO_FILE), wav_bytes(np.zeros(8000), rate=8000))
    session = load_session(raw, "s1", {})
    assert session.audio is None
    assert "sample rate 8000 Hz, clock.json says 16000 Hz" in str(session.problems[0])
    assert session.problems[0].path.endswith("audio.wav")


def test_out_of_order_and_duplicated_timestamps(raw):
    raw.put_text(session_key("s1", schema.FRAMES_INDEX), "frame,t,file\n0,0.5,a\n1,0.25,b\n")
    with pytest.raises(RawDataError, match="out of order"):
        read_frames_index(raw, "s1")
    vib = pd.DataFrame({"t": [0.0, 0.01, 0.01], "ax": 0.0, "ay": 0.0, "az": 0.0})
    raw.put_bytes(session_key("s1", schema.VIBRATION_FILE), parquet_bytes(vib))
    with pytest.raises(RawDataError, match="duplicated timestamps"):
        read_vibration(raw, "s1")


def test_missing_file_bad_labels_bad_notes(raw):
    raw.delete(session_key("s1", schema.VIBRATION_FILE))
    session = load_session(raw, "s1", {})
    assert session.vibration is None and "file is missing" in str(session.problems[0])
    raw.put_text(session_key("s1", schema.LABELS_FILE), "start_s,end_s,label\n3,2,normal\n")
    with pytest.raises(RawDataError, match="end before they start"):
        read_labels(raw, "s1")
    raw.put_text(session_key("s1", schema.NOTES_FILE), '{"t": 1}\n')
    with pytest.raises(RawDataError, match="line 1"):
        read_notes(raw, "s1")


def test_manifest_problems(tmp_path):
    store = LocalStore(tmp_path)
    with pytest.raises(RawDataError, match="file is missing"):
        read_manifest(store)
    store.put_text(schema.SESSIONS_MANIFEST, "session_id,site\na,x\n")
    with pytest.raises(RawDataError, match="missing columns"):
        read_manifest(store)
