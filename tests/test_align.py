"""Alignment engine: clock recovery, modes, policies and bad input on synthetic sessions."""

from __future__ import annotations

import io
import wave

import numpy as np
import pandas as pd
import pytest

from modalops.align import align_dataset, align_session, estimate_clocks
from modalops.config.align import AlignConfig
from modalops.dataset import columns
from modalops.dataset.layout import ClockModel
from modalops.dataset.spec import parse_spec
from modalops.store import LocalStore
from modalops.testing.recordings import (
    CLASSES,
    FPS,
    catalog_rows,
    make_session,
    synthetic_spec,
    write_session,
)

FRAME_PERIOD = 1.0 / FPS
SPEC = parse_spec(synthetic_spec())  # front (image, reference), mic, imu, log (text)


def estimate(session, frames, cfg=None):
    return estimate_clocks(session, SPEC, cfg or AlignConfig(), frames.__getitem__)


def align(session, frames, cfg=None, bad_files=frozenset()):
    return align_session(session, SPEC, cfg or AlignConfig(), frames.__getitem__, bad_files)


def _residuals(est, truth, duration):
    return [abs(float(est.to_device(t) - truth.to_device(t))) for t in np.linspace(0, duration, 5)]


@pytest.mark.parametrize(
    ("duration", "seed", "clocks"),
    [
        (30.0, 0, None),
        (30.0, 1, None),
        (30.0, 2, {"mic": ClockModel(5.0, 100.0), "imu": ClockModel(-5.0, -100.0)}),
        (120.0, 3, None),
        (120.0, 4, {"mic": ClockModel(-4.9, 100.0), "imu": ClockModel(4.9, 100.0)}),
        (600.0, 5, {"mic": ClockModel(3.3, -100.0), "imu": ClockModel(-2.1, 100.0)}),
    ],
)
def test_offsets_and_drift_recovered_within_one_frame(duration, seed, clocks):
    if clocks is not None:
        clocks = {**clocks, "log": ClockModel(1.0, 0.0)}
    session, frames, truth = make_session(
        SPEC, "s", duration, seed, clocks=clocks, meta_error_s=1.5
    )
    cfg = AlignConfig()
    est = estimate(session, frames, cfg)
    assert est["front"].method == "reference"
    for name in ("mic", "imu"):
        e = est[name]
        assert e.method == "estimate", e.fallback_reason
        assert e.confidence >= cfg.min_confidence
        assert max(_residuals(e, truth[name], duration)) < FRAME_PERIOD
        # The metadata clock alone is off by up to 1.5 s: the estimate must beat it clearly.
    assert est["log"].method == "metadata"


def test_long_session_fits_drift_from_segments():
    truth_clocks = {"mic": ClockModel(1.0, 100.0), "imu": ClockModel(-1.0, -100.0),
                    "log": ClockModel()}  # fmt: skip
    session, frames, truth = make_session(SPEC, "s", 600.0, 7, clocks=truth_clocks)
    est = estimate(session, frames)
    for name in ("mic", "imu"):
        assert len(est[name].segments) == 8
        # 100 ppm is 60 ms over 10 min; the fit must get the sign and rough size right.
        assert np.sign(est[name].drift_ppm) == np.sign(truth[name].drift_ppm)
        assert abs(est[name].drift_ppm - truth[name].drift_ppm) < 60


def test_clock_jump_gives_piecewise_fit():
    session, frames, truth = make_session(SPEC, "s", 480.0, 8, clocks={
        "mic": ClockModel(0.5, 0.0), "imu": ClockModel(1.0, 0.0), "log": ClockModel()})  # fmt: skip
    v = session.streams["imu"]
    jump_at = 240.0 + 1.0  # device time; the device restarts and its clock jumps 2 s ahead
    v.times = np.where(v.times > jump_at, v.times + 2.0, v.times)
    est = estimate(session, frames)["imu"]
    assert len(est.pieces) == 2, est
    early, late = est.to_device(np.array([60.0, 420.0])) - np.array([60.0, 420.0])
    assert abs(early - 1.0) < FRAME_PERIOD and abs(late - 3.0) < FRAME_PERIOD


def test_sync_markers_take_precedence():
    session, frames, truth = make_session(SPEC, "s", 30.0, 1)
    ref_marks = np.array([3.0, 20.0])
    # Markers claim a clock 0.7 s away from the truth: they must win over the cue estimate.
    claimed = ClockModel(truth["mic"].offset_s + 0.7, 0.0)
    session.sync = {"front": ref_marks, "mic": np.asarray(claimed.to_device(ref_marks))}
    est = estimate(session, frames)
    assert est["mic"].method == "sync_markers"
    assert est["mic"].offset_s == pytest.approx(claimed.offset_s, abs=1e-9)
    assert est["imu"].method == "estimate"


@pytest.mark.parametrize("mode", ["none", "metadata"])
def test_modes_none_and_metadata(mode):
    session, frames, _ = make_session(SPEC, "s", 30.0, 2)
    est = estimate(session, frames, AlignConfig(mode=mode))
    for name in ("mic", "imu", "log"):
        assert est[name].method == mode
        expected = 0.0 if mode == "none" else session.clocks[name].offset_s
        assert est[name].offset_s == expected


def test_no_visible_cue_falls_back_per_policy():
    session, frames, truth = make_session(SPEC, "s", 30.0, 3, cue_off=frozenset({"mic"}))
    est = estimate(session, frames)
    assert est["mic"].method == "metadata"
    # the reason names why: no peak stands out, or a rival peak nearly as high (ambiguous)
    assert est["mic"].fallback_reason.startswith(("low confidence", "ambiguous"))
    assert est["imu"].method == "estimate"

    dropped = align(session, frames, AlignConfig(low_confidence_policy="quarantine_stream"))
    assert not dropped.samples["has__mic"].any()
    assert dropped.samples["has__imu"].all()
    assert any(r.stream == "mic" and ("low confidence" in r.reason or "ambiguous" in r.reason)
               for r in dropped.quarantine)  # fmt: skip

    rejected = align(session, frames, AlignConfig(low_confidence_policy="quarantine_session"))
    assert rejected.status == "quarantined" and rejected.samples.empty
    assert "mic" in rejected.reason
    assert "low confidence" in rejected.reason or "ambiguous" in rejected.reason


def test_aligned_samples_follow_the_contract():
    session, frames, _ = make_session(SPEC, "s", 30.0, 4)
    out = align(session, frames)
    df = out.samples
    assert list(df.columns[:7]) == ["session_id", "window_index", "t_start", "t_end", "label",
                                    "label_overlap", "boundary"]  # fmt: skip
    assert list(df.columns) == columns.sample_columns(SPEC)
    assert df["x__log"].dtype == "string"
    assert df["window_index"].dtype == np.int32 and df["align_confidence"].dtype == np.float32
    # The reference covers its last frame's period; no window may reach past that.
    assert df["t_end"].max() <= session.streams["front"].times[-1] + FRAME_PERIOD + 1e-9
    assert len(df) >= 29 and (np.diff(df["t_start"]) > 0).all()
    row = df.iloc[3]
    with wave.open(io.BytesIO(row["x__mic"])) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        assert abs(w.getnframes() - 8000) <= 1
    vib = np.load(io.BytesIO(row["x__imu"]))
    assert vib.dtype == np.float32 and vib.shape[1] == 3 and 95 <= vib.shape[0] <= 105
    assert row["x__front"][:2] == b"\xff\xd8"
    assert set(df["label"].dropna()) <= set(CLASSES)
    assert (df["align_confidence"] >= AlignConfig().min_confidence).all()


def test_corrupt_frame_is_skipped_for_the_nearest_good_one():
    session, frames, _ = make_session(SPEC, "s", 30.0, 5)
    bad = session.streams["front"].files[10]  # frame at ~2.5 s: centre of window [2, 3)
    frames[bad] = b"not a jpeg"
    out = align(session, frames, bad_files=frozenset({bad}))
    row = out.samples.set_index("window_index").loc[2]
    assert row["has__front"] and row["x__front"] != b"not a jpeg"
    assert all(j != b"not a jpeg" for j in out.samples["x__front"] if j is not None)


def test_stream_that_ends_early_is_absent_afterwards():
    session, frames, _ = make_session(SPEC, "s", 30.0, 6)
    v = session.streams["imu"]
    v.times, v.values = v.times[:1500], v.values[:1500]  # 15 s of telemetry on a 30 s session
    end_ref = float(session.clocks["imu"].to_reference(v.times[-1]))
    out = align(session, frames)
    df = out.samples
    assert df.loc[df["t_end"] < end_ref - 1, "has__imu"].all()
    assert not df.loc[df["t_start"] > end_ref + 1, "has__imu"].any()
    assert out.stats["imu"]["absent_after_end"] > 10
    assert any(r.stream == "imu" and "ends early" in r.reason for r in out.quarantine)
    assert df["has__mic"].all()


def test_dataset_bad_inputs_get_reasons_and_others_go_on(tmp_path):
    raw, out = LocalStore(tmp_path / "raw"), LocalStore(tmp_path / "out")
    catalogs = []
    # s_good: clean.
    good, frames, truth = make_session(SPEC, "s_good", 30.0, 10)
    write_session(raw, SPEC, good, frames, truth)
    catalogs.append(catalog_rows(SPEC, good))
    # s_order: imu timestamps out of order -> RawDataError -> imu missing.
    order, frames, truth = make_session(SPEC, "s_order", 30.0, 11)
    t = order.streams["imu"].times
    t[100], t[101] = t[101], t[100]
    write_session(raw, SPEC, order, frames, truth)
    catalogs.append(catalog_rows(SPEC, order))
    # s_apart: mic and imu recorded 100 s after the reference stopped: nothing overlaps.
    apart, frames, truth = make_session(SPEC, "s_apart", 30.0, 12, clocks={
        "mic": ClockModel(100.0, 0.0), "imu": ClockModel(100.0, 0.0), "log": ClockModel()})  # fmt: skip
    apart.clocks = {
        "front": ClockModel(),
        "mic": ClockModel(),
        "imu": ClockModel(),
        "log": ClockModel(),
    }
    write_session(raw, SPEC, apart, frames)
    catalogs.append(catalog_rows(SPEC, apart))
    # s_nolabels: labels quarantined at ingest -> skipped with a reason.
    nolab, frames, _ = make_session(SPEC, "s_nolabels", 30.0, 13)
    write_session(raw, SPEC, nolab, frames)
    catalogs.append(catalog_rows(SPEC, nolab, {"labels": "quarantined"}))
    catalog = pd.concat(catalogs, ignore_index=True)

    result = align_dataset(raw, SPEC, catalog, AlignConfig(), out, "runs/r1", batch_sessions=2)
    samples = pd.concat([pd.read_parquet(io.BytesIO(out.get_bytes(k))) for k in result.part_keys])
    assert result.n_samples == len(samples) > 0
    assert set(samples["session_id"]) == {"s_good", "s_order"}
    assert (
        samples.loc[samples["session_id"] == "s_good", ["has__front", "has__mic", "has__imu"]]
        .all()
        .all()
    )
    assert not samples.loc[samples["session_id"] == "s_order", "has__imu"].any()

    rep = result.report.set_index(["session_id", "stream"])
    assert "out of order" in rep.loc[("s_order", "imu"), "fallback_reason"]
    assert rep.loc[("s_apart", "mic"), "session_status"] == "quarantined"
    assert "do not overlap" in rep.loc[("s_apart", "mic"), "session_reason"]
    assert (
        result.report.loc[result.report["session_id"] == "s_nolabels", "session_status"]
        .eq("quarantined")
        .all()
    )
    good_rows = result.report[
        (result.report["session_id"] == "s_good") & result.report["stream"].isin(["mic", "imu"])
    ]
    assert (good_rows["residual_offset_s"].abs() < FRAME_PERIOD).all()

    q = result.quarantine
    assert (q["stage"] == "align").all()
    assert (
        q.loc[(q["session_id"] == "s_order") & (q["stream"] == "imu"), "reason"]
        .str.contains("out of order")
        .any()
    )
    assert q.loc[q["session_id"] == "s_apart", "reason"].str.contains("do not overlap").any()
    assert q.loc[q["session_id"] == "s_nolabels", "reason"].str.contains("labels").any()
    assert out.exists("runs/r1/align_report.parquet")
    assert len(out.list("runs/r1/align_plots")) == 3
    assert result.summary["sessions"] == 4 and result.summary["sessions_quarantined"] == 2
