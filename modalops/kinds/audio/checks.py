"""Validation of audio streams: per-window WAV statistics, their rules, and label-check features."""

from __future__ import annotations

import io
import wave

import numpy as np
import pandas as pd

from modalops.dataset.columns import stat_column
from modalops.kinds.payloads import is_absent
from modalops.kinds.spectra import log_band_energies
from modalops.validate.result import Rule

DRIFT_STATS: tuple[str, ...] = ("rms", "clip_fraction")
_STATS = {
    "decodable": "boolean",
    "rate": "float64",
    "duration_s": "float64",
    "rms": "float64",
    "clip_fraction": "float64",
    "nan": "boolean",
}
BANDS = 16
FMIN_HZ = 50.0
NFFT = 512


def _one(data: object) -> tuple:
    """(decodable, rate, duration_s, rms, clip_fraction, has_nan) of one WAV; NaN when absent."""
    if is_absent(data):
        return (None, np.nan, np.nan, np.nan, np.nan, None)
    try:
        with wave.open(io.BytesIO(bytes(data)), "rb") as wav:
            channels, width, rate, n_frames = (
                wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()
            )  # fmt: skip
            raw = wav.readframes(n_frames)
    except (wave.Error, EOFError, ValueError):
        return (False, np.nan, np.nan, np.nan, np.nan, None)
    # A truncated file is undecodable as a whole: its header promises frames it does not hold.
    if width != 2 or rate <= 0 or len(raw) < n_frames * width * channels:
        return (False, float(rate), np.nan, np.nan, np.nan, None)
    pcm = np.frombuffer(raw, dtype="<i2")
    if pcm.size == 0:
        return (True, float(rate), 0.0, 0.0, 0.0, False)
    x = pcm.astype(np.float32) / 32768.0
    clip = float(np.count_nonzero((pcm >= 32767) | (pcm <= -32767))) / pcm.size
    # PCM16 cannot hold NaN; the column still exists so a float-WAV reader can report it.
    return (True, float(rate), n_frames / rate, float(np.sqrt(np.mean(x * x))), clip,
            bool(not np.isfinite(x).all()))  # fmt: skip


def window_stats(payloads: list, params, checks, window_s: float) -> pd.DataFrame:
    """decodable, rate, duration_s, rms, clip_fraction, nan, duration_ratio (duration / window)."""
    frame = pd.DataFrame([_one(v) for v in payloads], columns=list(_STATS))
    out = pd.DataFrame(index=range(len(payloads)))
    for name, dtype in _STATS.items():
        out[name] = frame[name].astype(dtype) if len(frame) else pd.Series(dtype=dtype)
    with np.errstate(all="ignore"):
        out["duration_ratio"] = out["duration_s"] / window_s if window_s > 0 else np.nan
    return out


def sample_rules(stream: str, params, checks) -> list[Rule]:
    def col(stat: str) -> str:
        return stat_column(stream, stat)

    tol = checks.duration_tolerance
    lo, hi = checks.rms_range
    rules = [Rule(f"{stream}_decodable", col("decodable"), "in_set", stream, value_set=(True,))]
    if checks.file_rate is not None:
        rules.append(
            Rule(f"{stream}_rate", col("rate"), "between", stream, min_value=checks.file_rate,
                 max_value=checks.file_rate)
        )  # fmt: skip
    return [
        *rules,
        Rule(f"{stream}_duration", col("duration_ratio"), "between", stream, min_value=1 - tol,
             max_value=1 + tol, note="clip duration / window length"),
        Rule(f"{stream}_clipping", col("clip_fraction"), "between", stream,
             max_value=checks.max_clip_fraction),
        Rule(f"{stream}_rms", col("rms"), "between", stream, min_value=lo, max_value=hi),
        Rule(f"{stream}_no_nan", col("nan"), "in_set", stream, value_set=(False,)),
    ]  # fmt: skip


def catalog_rules(stream: str, params, checks) -> list[Rule]:
    """Whole-stream rules: a positive duration, and the native rate when the spec fixes one."""
    rules = [
        Rule(f"catalog_{stream}_duration", stat_column(stream, "duration_s"), "between", stream,
             min_value=1e-9)
    ]  # fmt: skip
    if checks.file_rate is not None:
        rules.append(
            Rule(f"catalog_{stream}_rate", stat_column(stream, "sample_rate"), "between", stream,
                 min_value=checks.file_rate, max_value=checks.file_rate)
        )  # fmt: skip
    return rules


def label_features(payload, params, window_s: float) -> np.ndarray | None:
    """16 log-spaced log band energies (50 Hz to Nyquist), log RMS and envelope modulation."""
    if is_absent(payload):
        return None
    try:
        with wave.open(io.BytesIO(bytes(payload)), "rb") as wav:
            rate, width, n = wav.getframerate(), wav.getsampwidth(), wav.getnframes()
            raw = wav.readframes(n)
    except (wave.Error, EOFError, OSError, ValueError):
        return None
    if width != 2 or rate <= 0 or len(raw) < 2 * NFFT:
        return None
    x = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    n_frames = 1 + (x.size - NFFT) // (NFFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(x, NFFT)[:: NFFT // 2][:n_frames]
    spec = np.abs(np.fft.rfft(frames * np.hanning(NFFT), axis=1)) ** 2
    freqs = np.fft.rfftfreq(NFFT, 1.0 / rate)
    edges = np.geomspace(FMIN_HZ, rate / 2, BANDS + 1)
    edges[-1] += 1.0  # include the Nyquist bin
    bands = log_band_energies(spec.mean(axis=0), freqs, edges)
    frame_rms = np.sqrt((frames**2).mean(axis=1))
    rms = float(np.sqrt((x**2).mean()))
    modulation = float(frame_rms.std() / (frame_rms.mean() + 1e-8))  # knocks, bursts
    return np.concatenate([bands, [np.log10(rms + 1e-8), modulation]]).astype(np.float32)


def session_relative(block: np.ndarray, present: np.ndarray, session_median) -> list[np.ndarray]:
    """The features and their difference from the session's median (hum, gain differ by room)."""
    return [block, block - session_median(block)]
