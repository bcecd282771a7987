"""Tests of the demo-data generator: determinism, layout, label mix, sync cues, corruptions, and the
dataset.yaml it writes (read back with the core's spec parser and raw-layout functions)."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from modalops.dataset import layout
from modalops.dataset.errors import RawDataError
from modalops.dataset.layout import ClockModel
from modalops.dataset.spec import spec_from_text
from modalops.kinds.audio.wav import decode_wav
from modalops.store import LocalStore
from modalops_demo import names as schema
from modalops_demo.generate import (
    CORRUPTION_KINDS,
    DemoDataConfig,
    generate_demo_data,
    parse_corrupt_specs,
    plan_session,
    status_light_box,
)

TINY = {"sessions": 3, "duration_s": 12.0}


def _hashes(store: LocalStore) -> dict[str, str]:
    return {k: hashlib.sha256(store.get_bytes(k)).hexdigest() for k in store.list()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("raw"))
    summary = generate_demo_data(store, DemoDataConfig(**TINY))
    return store, summary


def _spec(store):
    return spec_from_text(store.get_text(schema.SPEC_FILE), store.uri(schema.SPEC_FILE))


class _Session:
    """One demo session as the shared readers see it (dataset.layout.load_session)."""

    def __init__(self, store, spec, sid):
        session = layout.load_session(store, spec, sid, {})
        camera, audio, vib, notes = (session.stream(n) for n in schema.MODALITIES)
        self.frame_times, self.frame_files = camera.times, camera.files
        self.audio, self.audio_rate = audio.samples, audio.sample_rate
        self.audio_start = audio.start_s
        self.vib_times, self.vib = vib.times, vib.values
        self.notes = notes.texts
        self.labels = session.labels


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


def test_the_written_spec_parses_and_matches_the_files(tmp_path, tiny):
    store, summary = tiny
    spec = _spec(store)
    shipped = schema.demo_spec()
    assert spec.name == shipped.name and spec.labels.classes == list(schema.LABELS)
    assert spec.stream_names == list(schema.MODALITIES) and spec.reference == "camera"
    sessions = layout.read_sessions(store, spec)  # every declared column is in the table
    assert list(sessions[spec.sessions.id_column]) == summary.session_ids
    for sid in summary.session_ids:
        listing = set(store.list(layout.session_folder(spec, sid)))
        for name in spec.streams:
            assert layout.stream_key(spec, sid, name, None) in listing, name
        assert layout.session_key(spec, sid, spec.sessions.clock_file) in listing
        s = _Session(store, spec, sid)
        # the declared parameters are what the files hold
        assert s.audio_rate == spec.params("audio").sample_rate
        assert 0.8 < spec.params("vibration").sample_rate * np.median(np.diff(s.vib_times)) < 1.2
        w, h = Image.open(io.BytesIO(store.get_bytes(s.frame_files[0]))).size
        assert [w, h] == list(spec.checks("camera").frame_size)
        assert (spec.params("camera").width, spec.params("camera").height) == (w, h)
        assert set(s.labels["label"]) <= set(spec.labels.classes)
    # a generator configured otherwise declares its own sizes
    other = LocalStore(tmp_path / "small-spec")
    generate_demo_data(other, DemoDataConfig(sessions=3, duration_s=6.0, audio_rate=8000))
    assert _spec(other).params("audio").sample_rate == 8000


def test_layout_is_readable_by_the_shared_readers(tiny):
    store, summary = tiny
    spec = _spec(store)
    manifest = layout.read_sessions(store, spec)
    assert manifest["subject_id"].str.match(r"^op-\d{3}$").all()
    for sid in manifest["session_id"]:
        s = _Session(store, spec, sid)
        assert len(s.frame_files) == int(12.0 * 4.0)
        assert s.audio_rate == 16000
        assert s.vib.shape[1] == 3
        assert isinstance(s.notes, list)
        labels = s.labels
        # Contiguous cover of the session on the reference clock.
        assert labels["start_s"].iloc[0] == 0.0 and labels["end_s"].iloc[-1] == 12.0
        np.testing.assert_allclose(labels["start_s"].iloc[1:], labels["end_s"].iloc[:-1])
        # Device streams cover the whole session once mapped back with the true clock.
        truth = json.loads(store.get_text(f"truth/{sid}.json"))
        clock = ClockModel(**truth["audio"])
        t0 = clock.to_reference(s.audio_start)
        t1 = clock.to_reference(s.audio_start + s.audio.size / 16000)
        assert t0 < 0 and t1 > 12.0
        vclock = ClockModel(**truth["vibration"])
        assert vclock.to_reference(s.vib_times[0]) < 0
        assert vclock.to_reference(s.vib_times[-1]) > 12.0
        rate = 1 / np.median(np.diff(s.vib_times))
        assert 95 < rate < 105


def test_true_offsets_recorded_and_metadata_is_wrong_by_at_most_1_5_s(tiny):
    store, summary = tiny
    spec = _spec(store)
    for sid in summary.session_ids:
        truth = json.loads(store.get_text(f"truth/{sid}.json"))
        clocks, _ = layout.read_clock_file(store, spec, sid)
        doc = json.loads(store.get_text(layout.session_key(spec, sid, spec.sessions.clock_file)))
        assert doc["reference"] == spec.reference == "camera"
        assert clocks["camera"] == ClockModel(0.0, 0.0)
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
    session = _Session(store, _spec(store), sid)
    rows, cols = status_light_box(64)
    on = plan.machine_on.contains(session.frame_times)
    green = np.array(
        [
            np.asarray(Image.open(io.BytesIO(store.get_bytes(f))))[rows, cols, 1].mean()
            for f in session.frame_files
        ]
    )
    assert on.any() and (~on).any()
    assert green[on].min() > 150 > 80 > green[~on].max()
    truth = json.loads(store.get_text(f"truth/{sid}.json"))
    # Audio RMS per 0.1 s block is much higher while the machine runs (true clock).
    x = session.audio
    block = 1600
    n = x.size // block
    rms = np.sqrt((x[: n * block].reshape(n, block) ** 2).mean(axis=1))
    t_dev = session.audio_start + (np.arange(n) + 0.5) * block / session.audio_rate
    t_ref = ClockModel(**truth["audio"]).to_reference(t_dev)
    a_on = plan.machine_on.contains(t_ref)
    assert np.median(rms[a_on]) > 5 * np.median(rms[~a_on])
    mag = np.linalg.norm(session.vib, axis=1)
    v_on = plan.machine_on.contains(
        ClockModel(**truth["vibration"]).to_reference(session.vib_times)
    )
    assert np.median(mag[v_on]) > 5 * np.median(mag[~v_on])


def _auc(pos: list[float], neg: list[float]) -> float:
    pos_a, neg_a = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((pos_a > neg_a).mean() + 0.5 * (pos_a == neg_a).mean())


def test_faults_are_audible_and_felt():
    from modalops_demo.generate import render_audio, render_vibration

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
    from modalops_demo.generate import render_frames

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
    spec = _spec(store)
    (r,) = _by_kind(summary, "truncated_wav")
    with pytest.raises(RawDataError, match="truncated WAV"):
        decode_wav(store.get_bytes(r.file), r.file)
    (r,) = _by_kind(summary, "sample_rate")
    _, entries = layout.read_clock_file(store, spec, r.session_id)
    _, rate = decode_wav(store.get_bytes(r.file), r.file)
    assert rate == 8000 and entries["audio"]["sample_rate"] == 16000
    (r,) = _by_kind(summary, "nan_burst")
    vib = pq.read_table(io.BytesIO(store.get_bytes(r.file))).to_pandas()[["ax", "ay", "az"]]
    assert np.isnan(vib.to_numpy()).any()
    (r,) = _by_kind(summary, "flatline")
    vals = pq.read_table(io.BytesIO(store.get_bytes(r.file))).to_pandas()[["ax", "ay", "az"]]
    assert (vals.std() == 0).sum() == 1
    (r,) = _by_kind(summary, "shuffled_timestamps")
    times = pq.read_table(io.BytesIO(store.get_bytes(r.file))).to_pandas()["t"].to_numpy(float)
    with pytest.raises(RawDataError, match="out of order") as err:
        layout.check_times(store.uri(r.file), times, "vibration")
    assert err.value.path == store.uri(r.file)
    (r,) = _by_kind(summary, "missing_modality")
    assert not store.exists(r.file)
    (r,) = _by_kind(summary, "unknown_label")
    # the core's label reader refuses classes the spec does not declare, naming the file and line
    with pytest.raises(RawDataError, match=r"unknown labels .* \(first at line \d+\)"):
        layout.read_labels(store, spec, r.session_id)


def test_subtle_label_corruptions_change_labels_but_stay_valid(corrupted):
    store, summary = corrupted
    for kind in ("label_shift", "label_swap"):
        for sid in {r.session_id for r in _by_kind(summary, kind)}:
            noisy = layout.read_labels(store, _spec(store), sid)
            clean = pd.read_csv(io.BytesIO(store.get_bytes(f"truth/labels/{sid}.csv")))
            if kind == "label_shift":
                assert not np.allclose(noisy["start_s"], clean["start_s"])
            else:
                assert (noisy["label"] != clean["label"]).any()
            # Still contiguous and covering the session: nothing a schema check would catch.
            np.testing.assert_allclose(noisy["start_s"].iloc[1:], noisy["end_s"].iloc[:-1])
            assert noisy["start_s"].iloc[0] == 0.0 and noisy["end_s"].iloc[-1] == 12.0
