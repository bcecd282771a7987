"""Tests of the demo-data generator: determinism, layout, label mix, sync cues, corruptions."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from modalops import raw_layout, schema
from modalops.demo_data import (
    CORRUPTION_KINDS,
    DemoDataConfig,
    generate_demo_data,
    parse_corrupt_specs,
    plan_session,
    status_light_box,
)
from modalops.raw_layout import RawDataError
from modalops.store import LocalStore

TINY = {"sessions": 3, "duration_s": 12.0}


def _hashes(store: LocalStore) -> dict[str, str]:
    return {k: hashlib.sha256(store.get_bytes(k)).hexdigest() for k in store.list()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("raw"))
    summary = generate_demo_data(store, DemoDataConfig(**TINY))
    return store, summary


def test_same_config_gives_identical_bytes(tmp_path, tiny):
    store, _ = tiny
    again = LocalStore(tmp_path / "again")
    generate_demo_data(again, DemoDataConfig(**TINY))
    assert _hashes(again) == _hashes(store)
    other = LocalStore(tmp_path / "other")
    generate_demo_data(other, DemoDataConfig(**TINY, seed=1))
    other_hashes, hashes = _hashes(other), _hashes(store)
    for key in ("sessions/sess-0000/audio.wav", "sessions/sess-0000/vibration.parquet"):
        assert other_hashes[key] != hashes[key]


def test_layout_is_readable_by_the_shared_readers(tiny):
    store, summary = tiny
    manifest = raw_layout.read_manifest(store)
    assert list(manifest["session_id"]) == summary.session_ids
    assert manifest["subject_id"].str.match(r"^op-\d{3}$").all()
    for rec in manifest.to_dict("records"):
        s = raw_layout.load_session(store, rec["session_id"], rec)
        assert s.problems == []
        assert s.camera is not None and len(s.camera.files) == int(12.0 * 4.0)
        assert s.audio is not None and s.audio.sample_rate == 16000
        assert s.vibration is not None and s.vibration.values.shape[1] == 3
        assert s.notes is not None
        labels = s.labels
        assert set(labels["label"]) <= set(schema.LABELS)
        # Contiguous cover of the session on the reference clock.
        assert labels["start_s"].iloc[0] == 0.0 and labels["end_s"].iloc[-1] == 12.0
        np.testing.assert_allclose(labels["start_s"].iloc[1:], labels["end_s"].iloc[:-1])
        # Device streams cover the whole session once mapped back with the true clock.
        truth = json.loads(store.get_text(f"truth/{rec['session_id']}.json"))
        clock = raw_layout.ClockModel(**truth["audio"])
        t0 = clock.to_reference(s.audio.start_s)
        t1 = clock.to_reference(s.audio.start_s + s.audio.samples.size / 16000)
        assert t0 < 0 and t1 > 12.0
        vclock = raw_layout.ClockModel(**truth["vibration"])
        assert vclock.to_reference(s.vibration.times[0]) < 0
        assert vclock.to_reference(s.vibration.times[-1]) > 12.0
        rate = 1 / np.median(np.diff(s.vibration.times))
        assert 95 < rate < 105


def test_true_offsets_recorded_and_metadata_is_wrong_by_at_most_1_5_s(tiny):
    store, summary = tiny
    for sid in summary.session_ids:
        truth = json.loads(store.get_text(f"truth/{sid}.json"))
        clocks, doc = raw_layout.read_clock(store, sid)
        assert doc["reference"] == "camera"
        assert clocks["camera"] == raw_layout.ClockModel(0.0, 0.0)
        for name in ("audio", "vibration", "notes"):
            limit = 2.0 if name == "notes" else DemoDataConfig().max_offset_s
            assert abs(truth[name]["offset_s"]) <= limit
            assert abs(truth[name]["drift_ppm"]) <= 80.0
            assert abs(clocks[name].offset_s - truth[name]["offset_s"]) <= 1.5 + 1e-6
            assert clocks[name].drift_ppm == 0.0


def test_label_fractions_are_in_the_designed_ranges():
    cfg = DemoDataConfig()
    seconds = dict.fromkeys(schema.LABELS, 0.0)
    for i in range(cfg.sessions):
        labels = plan_session(cfg, i).labels
        for label, secs in (
            (labels["end_s"] - labels["start_s"]).groupby(labels["label"]).sum().items()
        ):
            seconds[label] += secs
    total = sum(seconds.values())
    frac = {k: v / total for k, v in seconds.items()}
    assert 0.40 <= frac["normal"] <= 0.58, frac
    assert 0.15 <= frac["proximity"] <= 0.28, frac
    assert 0.13 <= frac["fault"] <= 0.25, frac
    assert 0.06 <= frac["near_miss"] <= 0.15, frac
    sites = [plan_session(cfg, i).meta["site"] for i in range(200)]
    assert 0.04 <= sites.count("site_c") / 200 <= 0.18


def test_machine_has_enough_transitions_and_faults_only_while_running():
    cfg = DemoDataConfig(duration_s=60.0)
    for i in range(10):
        plan = plan_session(cfg, i)
        on = plan.machine_on
        assert 1.0 <= on.starts[0] <= 3.0  # starts off
        edges = np.concatenate([on.starts, on.ends])
        for t0 in np.arange(0, 31, 1.0):
            assert ((edges >= t0) & (edges < t0 + 30)).sum() >= 4
        mids = (plan.fault.starts + plan.fault.ends) / 2
        assert on.contains(mids).all()
        assert on.contains(plan.fault.starts + 1e-6).all()


def test_sync_cues_step_with_the_machine(tiny):
    store, summary = tiny
    cfg = DemoDataConfig(**TINY)
    sid = summary.session_ids[0]
    plan = plan_session(cfg, 0)
    session = raw_layout.load_session(store, sid, {})
    rows, cols = status_light_box(64)
    on = plan.machine_on.contains(session.camera.times)
    green = np.array(
        [
            np.asarray(Image.open(io.BytesIO(store.get_bytes(f))))[rows, cols, 1].mean()
            for f in session.camera.files
        ]
    )
    assert on.any() and (~on).any()
    assert green[on].min() > 150 > 80 > green[~on].max()
    truth = json.loads(store.get_text(f"truth/{sid}.json"))
    # Audio RMS per 0.1 s block is much higher while the machine runs (true clock).
    a = session.audio
    block = 1600
    n = a.samples.size // block
    rms = np.sqrt((a.samples[: n * block].reshape(n, block) ** 2).mean(axis=1))
    t_dev = a.start_s + (np.arange(n) + 0.5) * block / a.sample_rate
    t_ref = raw_layout.ClockModel(**truth["audio"]).to_reference(t_dev)
    a_on = plan.machine_on.contains(t_ref)
    assert np.median(rms[a_on]) > 5 * np.median(rms[~a_on])
    v = session.vibration
    mag = np.linalg.norm(v.values, axis=1)
    v_on = plan.machine_on.contains(
        raw_layout.ClockModel(**truth["vibration"]).to_reference(v.times)
    )
    assert np.median(mag[v_on]) > 5 * np.median(mag[~v_on])


def _auc(pos: list[float], neg: list[float]) -> float:
    pos_a, neg_a = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((pos_a > neg_a).mean() + 0.5 * (pos_a == neg_a).mean())


def test_faults_are_audible_and_felt():
    from modalops.demo_data import render_audio, render_vibration

    cfg = DemoDataConfig(duration_s=40.0)
    audio = {True: [], False: []}
    vib = {True: [], False: []}
    for i in range(4):
        plan = plan_session(cfg, i)
        x, start = render_audio(plan, cfg)
        tv, vals = render_vibration(plan, cfg)
        for t in np.arange(0.5, 39.0, 1.0):
            if not plan.machine_on.contains(np.array([t, t + 0.5])).all():
                continue  # compare running seconds only: the hum is not a fault cue
            fault = bool(plan.fault.contains(np.array([t + 0.25]))[0])
            i0 = int((plan.truth["audio"].to_device(t) - start) * cfg.audio_rate)
            seg = x[i0 : i0 + 8000]
            spec = np.abs(np.fft.rfft(seg)) ** 2  # 2 Hz bins
            whine = spec[750:1500].sum() / spec.sum()
            crest = np.abs(seg).max() / np.sqrt((seg**2).mean())
            audio[fault].append(whine * 50 + crest)
            j0 = np.searchsorted(tv, plan.truth["vibration"].to_device(t))
            v = vals[j0 : j0 + 50]
            vib[fault].append(float(np.abs(v).std(axis=0).max()))
    assert len(audio[True]) > 10 and len(audio[False]) > 10
    assert _auc(audio[True], audio[False]) > 0.8
    assert _auc(vib[True], vib[False]) > 0.8


def test_night_frames_are_darker_and_noisier():
    from modalops.demo_data import render_frames

    cfg = DemoDataConfig(duration_s=5.0)
    stats = {"day": [], "night": []}
    for i in range(12):
        plan = plan_session(cfg, i)
        _, frames = render_frames(plan, cfg)
        wall = frames[:, 12:20, 0:20].astype(float)  # a flat patch of wall
        # Temporal std per pixel is pure sensor noise: the wall never changes.
        stats[plan.meta["lighting"]].append((wall.mean(), wall.std(axis=0).mean()))
    day, night = np.array(stats["day"]), np.array(stats["night"])
    assert len(day) and len(night)
    assert night[:, 0].mean() < 0.6 * day[:, 0].mean()
    assert night[:, 1].mean() > 2 * day[:, 1].mean()


def test_parse_corrupt_specs():
    assert parse_corrupt_specs(["jpeg=0.05", "nan_burst=1"]) == {"jpeg": 0.05, "nan_burst": 1.0}
    with pytest.raises(ValueError, match="unknown kind 'jpg'"):
        parse_corrupt_specs(["jpg=0.1"])
    with pytest.raises(ValueError, match="KIND=RATE"):
        parse_corrupt_specs(["jpeg"])
    with pytest.raises(ValueError, match="not a number"):
        parse_corrupt_specs(["jpeg=abc"])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        parse_corrupt_specs(["jpeg=1.5"])
    with pytest.raises(ValueError, match="unknown corruption kind"):
        DemoDataConfig(corrupt={"bogus": 0.1})


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("bad"))
    cfg = DemoDataConfig(sessions=8, duration_s=12.0, corrupt=dict.fromkeys(CORRUPTION_KINDS, 0.1))
    summary = generate_demo_data(store, cfg)
    return store, summary


def _by_kind(summary, kind):
    return [r for r in summary.corrupted if r.kind == kind]


def test_every_kind_is_injected_and_recorded(corrupted):
    store, summary = corrupted
    recorded = json.loads(store.get_text("truth/corruptions.json"))
    assert [r.to_dict() for r in summary.corrupted] == recorded
    assert {r["kind"] for r in recorded} == set(CORRUPTION_KINDS)
    # Session-level kinds go to distinct sessions while there are enough of them.
    session_level = [
        r for r in summary.corrupted if r.kind not in ("jpeg", "label_shift", "label_swap")
    ]
    assert len({r.session_id for r in session_level}) == len({r.kind for r in session_level}) == 7


def test_each_corruption_produces_its_artifact(corrupted):
    store, summary = corrupted
    for r in _by_kind(summary, "jpeg"):
        with pytest.raises(OSError):
            Image.open(io.BytesIO(store.get_bytes(r.file))).load()
    (r,) = _by_kind(summary, "truncated_wav")
    with pytest.raises(RawDataError, match="truncated WAV"):
        raw_layout.decode_wav(store.get_bytes(r.file), r.file)
    (r,) = _by_kind(summary, "sample_rate")
    _, doc = raw_layout.read_clock(store, r.session_id)
    with pytest.raises(RawDataError, match="8000 Hz, clock.json says 16000"):
        raw_layout.read_audio(store, r.session_id, doc)
    (r,) = _by_kind(summary, "nan_burst")
    vib = raw_layout.read_vibration(store, r.session_id)
    assert np.isnan(vib.values).any()
    (r,) = _by_kind(summary, "flatline")
    vals = pq.read_table(io.BytesIO(store.get_bytes(r.file))).to_pandas()[["ax", "ay", "az"]]
    assert (vals.std() == 0).sum() == 1
    (r,) = _by_kind(summary, "shuffled_timestamps")
    session = raw_layout.load_session(store, r.session_id, {})
    assert any("out of order" in str(p) and p.path == store.uri(r.file) for p in session.problems)
    (r,) = _by_kind(summary, "missing_modality")
    assert not store.exists(r.file)
    (r,) = _by_kind(summary, "unknown_label")
    labels = raw_layout.read_labels(store, r.session_id)
    assert not set(labels["label"]) <= set(schema.LABELS)


def test_subtle_label_corruptions_change_labels_but_stay_valid(corrupted):
    store, summary = corrupted
    for kind in ("label_shift", "label_swap"):
        for sid in {r.session_id for r in _by_kind(summary, kind)}:
            noisy = raw_layout.read_labels(store, sid)
            clean = pd.read_csv(io.BytesIO(store.get_bytes(f"truth/labels/{sid}.csv")))
            if kind == "label_shift":
                assert not np.allclose(noisy["start_s"], clean["start_s"])
            else:
                assert (noisy["label"] != clean["label"]).any()
            # Still contiguous and covering the session: nothing a schema check would catch.
            np.testing.assert_allclose(noisy["start_s"].iloc[1:], noisy["end_s"].iloc[:-1])
            assert noisy["start_s"].iloc[0] == 0.0 and noisy["end_s"].iloc[-1] == 12.0
