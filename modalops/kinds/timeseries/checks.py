"""Validation of time-series streams: per-window table statistics, rules, label-check features."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd

from modalops.dataset.columns import stat_column
from modalops.kinds.payloads import is_absent
from modalops.kinds.spectra import log_band_energies
from modalops.validate.result import Rule

DRIFT_STATS: tuple[str, ...] = ("std", "nan_fraction")
_STATS = ("decodable", "rows", "nan_fraction", "min", "max", "std", "flat_channels")
BANDS = 8
FMIN_HZ = 1.0
# A served window is implausible beyond the training windows' per-channel mean +- this many
# standard deviations. Measured on held-out 1 s windows, mean and std from the training ones:
# BasicMotions (benchmarks/real/sources.py) accelerometer 6.8, gyroscope 11.6; Daphnet
# accelerometers up to 21.9 (ankle, a freezing-of-gait recording); the demo's vibration 5.2.
# 50 is more than twice the largest.
SERVING_RANGE_SD = 50.0


def _load(data: object) -> np.ndarray | None:
    try:
        return np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None


def _one(data: object, n_channels: int, flat_std: float) -> tuple:
    """(decodable, rows, nan_fraction, min, max, std, flat_channels); NaN when absent."""
    if is_absent(data):
        return (None, *([np.nan] * 6))
    arr = _load(data)
    if arr is None:
        return (False, *([np.nan] * 6))
    if arr.ndim != 2 or arr.shape[1] != n_channels or not np.issubdtype(arr.dtype, np.floating):
        return (False, float(arr.shape[0]) if arr.ndim else np.nan, *([np.nan] * 5))
    rows = arr.shape[0]
    if rows == 0:
        return (True, 0.0, *([np.nan] * 5))
    nan = np.isnan(arr)
    finite_any = (~nan).any()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # An all-NaN channel warns "degrees of freedom"; its NaN std is handled below.
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(arr, axis=0) if finite_any else np.full(n_channels, np.nan)
        # Peak-to-peak, not std: a stuck float32 reading has a std of ~1e-7 from rounding
        # in the mean, but a span of exactly 0.
        span = np.nanmax(arr, axis=0) - np.nanmin(arr, axis=0) if finite_any else std
    return (
        True,
        float(rows),
        float(nan.mean()),
        float(np.nanmin(arr)) if finite_any else np.nan,
        float(np.nanmax(arr)) if finite_any else np.nan,
        float(np.nanmean(std)) if finite_any else np.nan,
        # A channel that is all NaN counts as flat-lined too: it carries no signal.
        float(np.count_nonzero(~(span > flat_std)) if rows >= 2 else 0),
    )


def window_stats(payloads: list, params, checks, window_s: float) -> pd.DataFrame:
    """decodable, rows, nan_fraction, min, max, std (mean over channels), flat_channels, rate."""
    n_channels = len(params.channels)
    frame = pd.DataFrame(
        [_one(v, n_channels, checks.flat_std) for v in payloads], columns=list(_STATS)
    )
    out = pd.DataFrame(index=range(len(payloads)))
    out["decodable"] = (
        frame["decodable"].astype("boolean") if len(frame) else pd.Series(dtype="boolean")
    )
    for name in _STATS[1:]:
        out[name] = frame[name].astype("float64") if len(frame) else pd.Series(dtype="float64")
    out["rate"] = out["rows"] / window_s if window_s > 0 else np.nan
    return out


def sample_rules(stream: str, params, checks) -> list[Rule]:
    def col(stat: str) -> str:
        return stat_column(stream, stat)

    rate, tol = params.sample_rate, checks.rate_tolerance
    rules = [
        Rule(f"{stream}_decodable", col("decodable"), "in_set", stream, value_set=(True,),
             note=f"float (n, {len(params.channels)}) array: {', '.join(params.channels)}"),
        Rule(f"{stream}_rate", col("rate"), "between", stream, min_value=rate * (1 - tol),
             max_value=rate * (1 + tol), note="rows / window length"),
        Rule(f"{stream}_nan_fraction", col("nan_fraction"), "between", stream,
             max_value=checks.max_nan_fraction),
    ]  # fmt: skip
    if checks.abs_max is not None:
        rules += [
            Rule(f"{stream}_min", col("min"), "between", stream, min_value=-checks.abs_max),
            Rule(f"{stream}_max", col("max"), "between", stream, max_value=checks.abs_max),
        ]
    rules.append(
        Rule(f"{stream}_flat_channels", col("flat_channels"), "between", stream, max_value=0,
             note=f"channels whose range in the window is <= {checks.flat_std:g}")
    )  # fmt: skip
    return rules


def serving_rules(stream: str, params, checks, encoder=None) -> list[Rule]:
    """What the served model checks in every input row: the per-window rules, finite values, and
    values within the training windows' range (each channel's mean +- SERVING_RANGE_SD standard
    deviations, as the encoder's input normalisation learnt them) when the encoder has one."""
    from modalops.kinds.timeseries.encoder import channel_statistics

    top = float(np.finfo(np.float64).max)  # +-inf lie outside it; the codec would zero them
    lo, hi, note = -top, top, "finite values"
    trained = channel_statistics(encoder) if encoder is not None else None
    if trained is not None:
        mean, std = trained
        # floor: a channel constant in training still admits rounding-size differences
        spread = SERVING_RANGE_SD * np.maximum(std, 1e-6 * (1.0 + np.abs(mean)))
        lo, hi = float((mean - spread).min()), float((mean + spread).max())
        note = f"each channel's training mean +- {SERVING_RANGE_SD:g} sd"
    return [
        *sample_rules(stream, params, checks),
        Rule(f"{stream}_plausible_min", stat_column(stream, "min"), "between", stream,
             min_value=lo, note=note),
        Rule(f"{stream}_plausible_max", stat_column(stream, "max"), "between", stream,
             max_value=hi, note=note),
    ]  # fmt: skip


def catalog_rules(stream: str, params, checks) -> list[Rule]:
    """Whole-stream rules: the row rate, the NaN share and flat-lined channels."""
    rate, tol = params.sample_rate, checks.rate_tolerance

    def col(stat: str) -> str:
        return stat_column(stream, stat)

    return [
        Rule(f"catalog_{stream}_rate", col("sample_rate"), "between", stream,
             min_value=rate * (1 - tol), max_value=rate * (1 + tol)),
        Rule(f"catalog_{stream}_nan_fraction", col("nan_fraction"), "between", stream,
             min_value=0.0, max_value=checks.max_stream_nan_fraction),
        Rule(f"catalog_{stream}_flat_channels", col("flat_channels"), "between", stream,
             max_value=0, note="channels flat over the whole stream"),
    ]  # fmt: skip


def label_features(payload, params, window_s: float) -> np.ndarray | None:
    """Log spectral band energies (8 log-spaced bands, 1 Hz to Nyquist) of each channel, their
    max and min over the channels (a signature on any one axis, whatever the mounting), of the
    magnitude (its amplitude modulation), and the per-channel log std: 8C + 24 + C values."""
    if is_absent(payload):
        return None
    arr = _load(payload)
    n_channels = len(params.channels)
    if arr is None or arr.ndim != 2 or arr.shape[1] != n_channels or arr.shape[0] < 8:
        return None
    arr = arr.astype(np.float64)
    if np.isnan(arr).all(axis=0).any() or np.isinf(arr).any():
        return None
    mean = np.nanmean(arr, axis=0)
    arr = np.where(np.isnan(arr), mean, arr)
    centred = arr - mean
    magnitude = np.sqrt((arr**2).sum(axis=1))
    rate = arr.shape[0] / window_s if window_s > 0 else float(arr.shape[0])
    taper = np.hanning(arr.shape[0])
    spec = np.abs(np.fft.rfft(centred * taper[:, None], axis=0)) ** 2
    mag_spec = np.abs(np.fft.rfft((magnitude - magnitude.mean()) * taper)) ** 2
    freqs = np.fft.rfftfreq(arr.shape[0], 1.0 / rate)
    edges = np.geomspace(FMIN_HZ, rate / 2, BANDS + 1)
    edges[-1] += 1e-6
    per = np.stack([log_band_energies(spec[:, a], freqs, edges) for a in range(n_channels)])
    std = np.log10(centred.std(axis=0) + 1e-8)
    return np.concatenate(
        [
            per.ravel(),
            per.max(axis=0),
            per.min(axis=0),
            log_band_energies(mag_spec, freqs, edges),
            std,
        ]
    ).astype(np.float32)


def session_relative(block: np.ndarray, present: np.ndarray, session_median) -> list[np.ndarray]:
    """The features and their difference from the session's median (mounting differs by unit)."""
    return [block, block - session_median(block)]
