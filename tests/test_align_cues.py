"""Cue representations and the estimator's confidence: rivals, edges of the range, bad signals."""

from __future__ import annotations

import numpy as np
import pytest

from modalops.align.correlate import AMBIGUOUS, correlate
from modalops.align.estimate import _doubt
from modalops.config.align import AlignConfig
from modalops.dataset.spec import CueSpec
from modalops.kinds import get_kind
from modalops.kinds.audio.read import AudioStream
from modalops.kinds.base import Envelope
from modalops.kinds.envelopes import CueError, frame_cues, level
from modalops.kinds.timeseries.read import TimeseriesStream

RATE = 50.0


def _env(x: np.ndarray) -> Envelope:
    return level(x, 0, RATE, np.ones(x.size, dtype=bool), 0.05, log=False)


def _events(times: np.ndarray, n: int, width: float = 0.2) -> np.ndarray:
    t = np.arange(n) / RATE
    return sum(np.exp(-0.5 * ((t - c) / width) ** 2) for c in times)


def test_irregular_events_are_found_with_sub_sample_precision():
    rng = np.random.default_rng(0)
    onsets = np.sort(rng.uniform(2, 58, 20))
    true_lag = 1.237  # not a multiple of the 0.02 s grid
    ref = _env(_events(onsets, 3000) + rng.normal(0, 0.05, 3000))
    sig = _env(_events(onsets + true_lag, 3000) + rng.normal(0, 0.05, 3000))
    c = correlate(ref, sig, 0.0, 5.0)
    assert abs(c.lag_s - true_lag) < 0.25 / RATE  # a quarter of the grid step
    assert c.confidence > AlignConfig().min_confidence and c.rival < AMBIGUOUS


def test_a_periodic_cue_is_ambiguous_and_says_so():
    rng = np.random.default_rng(1)
    onsets = np.arange(2.0, 58.0, 1.0)  # one event a second, a lag of 1 s fits as well
    ref = _env(_events(onsets, 3000, 0.1) + rng.normal(0, 0.05, 3000))
    sig = _env(_events(onsets + 0.3, 3000, 0.1) + rng.normal(0, 0.05, 3000))
    c = correlate(ref, sig, 0.0, 3.0)
    cfg = AlignConfig()
    assert c.rival > 0.8 and c.confidence < cfg.min_confidence
    reason = _doubt(c, 3.0, cfg)
    assert reason.startswith("ambiguous: a second peak") and "from the best" in reason
    # a search range narrower than half the period leaves no rival: the same cue is then sure
    narrow = correlate(ref, sig, 0.25, 0.4)
    assert abs(narrow.lag_s - 0.3) < 0.02 and narrow.confidence > cfg.min_confidence


def test_a_repeating_cue_needs_its_cycle_confirmed_not_only_its_phase():
    rng = np.random.default_rng(4)
    onsets = np.arange(2.0, 58.0, 1.2)
    cfg = AlignConfig()

    def counted(amps, shift=0.0):  # events every 1.2 s whose sizes vary, as spoken words do
        t = np.arange(3000) / RATE
        bumps = [np.exp(-0.5 * ((t - c - shift) / 0.1) ** 2) for c in onsets]
        return sum(a * b for a, b in zip(amps, bumps, strict=True))

    amps = rng.uniform(0.3, 1.0, onsets.size)
    ref = _env(counted(amps) + rng.normal(0, 0.02, 3000))
    same = _env(counted(amps)[np.r_[15:3000, 0:15]] + rng.normal(0, 0.02, 3000))
    other = _env(counted(rng.uniform(0.3, 1.0, onsets.size), 0.47) + rng.normal(0, 0.02, 3000))
    # the same events on a clock 0.3 s behind: the sizes line up only at the true lag
    right = correlate(ref, same, -0.25, 0.5)
    assert abs(right.lag_s + 0.3) < 0.02 and right.confidence >= cfg.min_confidence
    # another session's events at the same pace: the phase fits, the cycle is not confirmed
    wrong = correlate(ref, other, 0.0, 0.5)
    assert wrong.periodic is not None and wrong.confidence < cfg.min_confidence
    assert _doubt(wrong, 0.5, cfg).startswith("periodic: the curve repeats every ")


def test_a_clock_outside_the_search_range_is_not_trusted():
    from scipy.ndimage import gaussian_filter1d

    x = gaussian_filter1d(np.random.default_rng(2).normal(size=3200), 0.6 * RATE)  # slow level
    ref = Envelope(x[:3000] / x.std(), 0, RATE, np.ones(3000, dtype=bool))
    sig = Envelope(x[125:3125] / x.std(), 0, RATE, np.ones(3000, dtype=bool))  # sig(t) = ref(t+2.5)
    c = correlate(ref, sig, 0.0, 2.0)  # the truth (-2.5 s) lies beyond +-2 s
    assert c.at_edge and c.confidence == 0.0 and abs(c.lag_s + 2.0) < 0.05
    assert "edge of the search range" in _doubt(c, 2.0, AlignConfig())


def test_flat_and_clipped_signals_have_no_usable_cue():
    t = np.arange(0, 10, 0.01)
    flat = TimeseriesStream(times=t, values=np.ones((t.size, 3)))
    ts = get_kind("timeseries").sync
    with pytest.raises(CueError, match="flat signal"):
        ts.candidates(flat, CueSpec(kind="magnitude_envelope"), RATE)
    clipped = np.sign(np.sin(np.arange(80_000) * 0.01)).astype(np.float32)
    audio = AudioStream(samples=clipped, sample_rate=8000, start_s=0.0)
    with pytest.raises(CueError, match="clipped signal"):
        get_kind("audio").sync.candidates(audio, CueSpec(kind="rms_envelope"), RATE)


def test_a_frozen_display_has_no_usable_cue():
    frames = [(k / 5.0, np.full((16, 16), 128, dtype=np.uint8)) for k in range(50)]
    with pytest.raises(CueError, match="flat signal: the region reads 128 in every frame"):
        frame_cues(frames, CueSpec(kind="roi_brightness", roi=(0, 1, 0, 1)), RATE)


def test_audio_offers_speech_band_level_and_onsets():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.01, 16_000 * 4).astype(np.float32)
    x[16_000:24_000] += 0.3 * np.sin(2 * np.pi * 800 * np.arange(8000) / 16_000).astype(np.float32)
    audio = AudioStream(samples=x, sample_rate=16_000, start_s=0.0)
    got = get_kind("audio").sync.candidates(audio, CueSpec(kind="rms_envelope"), RATE)
    assert set(got) == {"edges", "level", "onsets"}
    onset = got["onsets"]
    assert abs(float(np.argmax(onset.values)) / RATE - 1.0) < 0.06  # the tone starts at 1 s


def test_ten_hertz_sensors_align_to_a_quarter_sample():
    """Two 10 Hz devices seeing one movement, one on a clock 1.234 s ahead: the lag from the
    kind's representations is good to a quarter of the 0.1 s sample period."""
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(5)
    fine_t = np.arange(0, 60, 0.001)
    motion = gaussian_filter1d(rng.normal(size=(fine_t.size, 3)), 150, axis=0)  # ~1 Hz movement
    motion *= np.where((fine_t // 7) % 2 == 0, 1.0, 0.2)[:, None]  # bouts of activity and rest

    def device(offset: float) -> TimeseriesStream:
        t_dev = np.arange(0.5, 59.0, 0.1) + offset  # its own 10 Hz clock
        rows = np.stack([np.interp(t_dev - offset, fine_t, motion[:, j]) for j in range(3)], 1)
        return TimeseriesStream(times=t_dev, values=rows + rng.normal(0, 0.01, rows.shape))

    ts = get_kind("timeseries").sync
    cue = CueSpec(kind="magnitude_envelope")
    ref = ts.candidates(device(0.0), cue, RATE)
    sig = ts.candidates(device(1.234), cue, RATE)
    for name in ("edges", "level"):
        c = correlate(ref[name], sig[name], 0.0, 5.0)
        assert abs(c.lag_s - 1.234) < 0.025, (name, c.lag_s)
