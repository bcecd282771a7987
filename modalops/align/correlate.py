"""Cross-correlation of two cue representations, and how sure its peak is (docs/alignment.md).

The curve is computed by FFT over at least +-STAT_S of lags around the starting guess, the peak
is taken inside the search range and refined between grid points, and its confidence is the
peak-to-sidelobe ratio against what echoes do not explain, lowered when:

- a rival peak inside the search range comes near it (`rival > AMBIGUOUS`: ambiguous);
- the curve repeats and the peak does not beat the same lag a period or more away by Z_CYCLE
  noise sigmas (the phase is found, the cycle is not: periodic);
- the peak sits on the search range's edge (the clock may lie beyond it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from modalops.kinds.base import Envelope

STAT_S = 10.0  # sidelobe statistics come from at least +-10 s of lags, however narrow the search
AMBIGUOUS = 0.5  # a rival peak above this share of the main one starts to lower the confidence
# A repeating curve's peak must beat the mean of the curve one to four periods away by this many
# noise sigmas (one-sided p ~ 0.001) before the cycle, not only the phase, counts as found;
# until then the confidence is that margin, below any sensible min_confidence.
Z_CYCLE = 3.0


@dataclass
class Correlation:
    lag_s: float  # best lag: t_device - t_ref
    psr: float  # peak-to-sidelobe ratio against the unexplained sidelobes
    lags: np.ndarray
    values: np.ndarray
    confidence: float = 0.0  # psr, lowered as the module docstring says
    rival: float = 0.0  # the best other peak in the search range, as a share of the peak's height
    rival_lag_s: float = math.nan
    at_edge: bool = False  # the peak sits on the search range's edge: the clock may lie beyond
    cue: str = ""  # which representations were correlated: "<reference's>/<stream's>"
    imprecise: tuple[float, float] | None = None  # (sub-window scatter, sample period) when lowered
    periodic: tuple[float, float] | None = None  # (curve period s, peak's excess z) when lowered


@dataclass
class _Curve:
    """The correlation curve over the lag range, and what the confidence steps need of it."""

    lags: np.ndarray
    values: np.ndarray
    ks: np.ndarray  # FFT index of each lag: c[k] = sum_i r[i] s[i + k]
    inside: np.ndarray  # lags at which the two recordings overlap at all
    search: np.ndarray  # indices inside the search range
    p: int  # index of the peak inside the search range
    ref_auto: np.ndarray  # the reference's autocorrelation, FFT-indexed
    r_size: int
    s_size: int


def correlate(
    ref: Envelope,
    sig: Envelope,
    centre_s: float,
    half_width_s: float,
    ref_range: tuple[float, float] | None = None,
    lag_only: bool = False,
) -> Correlation:
    """FFT cross-correlation of two cue representations (already in correlation form: edges,
    levels, onsets; `modalops.kinds.envelopes`) over lags centre +- half_width.

    Lag L means sig(t + L) matches ref(t): the stream's device clock reads t_ref + L.
    `lag_only`: the refined lag and the plain peak-to-sidelobe ratio, without echoes, rivals or
    the wide lag range (sub-windows and drift segments need no more).
    """
    wide = half_width_s if lag_only else max(half_width_s, STAT_S)
    curve = _curve(ref, sig, centre_s, half_width_s, wide, ref_range)
    if curve is None:
        return Correlation(math.nan, 0.0, np.empty(0), np.empty(0))
    rate, values, p = ref.rate, curve.values, curve.p
    lag = _refined(curve.lags, values, p, rate)
    if lag_only:
        return Correlation(lag, _plain_psr(values, p, rate), curve.lags, values)
    base = float(np.median(values[curve.inside])) if curve.inside.any() else 0.0
    excl = 2 * _lobe(values, p, base)
    near = np.abs(np.arange(values.size) - p) <= excl
    psr, plain, periodic = _peak_over_noise(curve, near, excl, rate)
    rival, rival_lag = _rival(curve, near, centre_s, half_width_s)
    at_edge = p in (curve.search[0], curve.search[-1]) and curve.search.size > 2
    conf = psr
    if rival > AMBIGUOUS:
        # Echoes the search range could have picked are real alternatives, not noise: the peak
        # is measured against every sidelobe, and lowered further the closer the rival comes.
        conf = plain * (1.0 - rival) / (1.0 - AMBIGUOUS)
    elif periodic is not None and periodic[1] < Z_CYCLE:
        # the cycle is not confirmed: all the data vouches for is the margin over its aliases
        conf = min(psr, max(periodic[1], 0.0))
    else:
        periodic = None  # no repeat, or the cycle is confirmed: nothing to report
    if at_edge:
        conf = 0.0
    return Correlation(lag, psr, curve.lags, values, conf, rival, rival_lag, at_edge,
                       periodic=periodic)  # fmt: skip


def _curve(ref: Envelope, sig: Envelope, centre_s: float, half_width_s: float, wide: float,
           ref_range: tuple[float, float] | None) -> _Curve | None:  # fmt: skip
    """The normalised correlation over centre +- wide, and its peak inside centre +- half_width."""
    rate = ref.rate
    r, r0 = ref.values, ref.start_index
    if ref_range is not None:
        lo = max(int(np.ceil(ref_range[0] * rate)) - r0, 0)
        hi = min(int(np.floor(ref_range[1] * rate)) - r0, r.size)
        r, r0 = r[lo:hi], r0 + lo
    s = sig.values
    if r.size < 3 or s.size < 3 or not np.any(r) or not np.any(s):
        return None
    n = 1 << int(np.ceil(np.log2(r.size + s.size)))
    fr = np.fft.rfft(r, n)
    full = np.fft.irfft(np.conj(fr) * np.fft.rfft(s, n), n)
    # c[k] = sum_i r[i] s[i + k]; lag L = (sig.start - r0 + k) / rate.
    k_lo = int(np.ceil((centre_s - wide) * rate)) - (sig.start_index - r0)
    k_hi = int(np.floor((centre_s + wide) * rate)) - (sig.start_index - r0)
    ks = np.arange(k_lo, k_hi + 1)
    inside = (ks > -r.size) & (ks < s.size)  # beyond these no sample overlaps: zero correlation
    values = np.where(inside, full[ks % n], 0.0) / (np.linalg.norm(r) * np.linalg.norm(s))
    lags = (sig.start_index - r0 + ks) / rate
    search = np.flatnonzero(np.abs(lags - centre_s) <= half_width_s + 0.5 / rate)
    if search.size == 0:
        return None
    p = int(search[np.argmax(values[search])])
    # the reference's autocorrelation, read at lag differences d as ref_auto[d % n]
    ref_auto = np.fft.irfft(np.abs(fr) ** 2, n)
    return _Curve(lags, values, ks, inside, search, p, ref_auto, r.size, s.size)


def _peak_over_noise(curve: _Curve, near: np.ndarray, excl: int, rate: float):
    """(psr, plain psr, (period s, excess z) or None) of the peak.

    Echoes: were the peak right, the curve elsewhere would repeat the reference's own
    autocorrelation around it, and a cue that repeats makes the curve repeat with its period.
    What the better of those echo models leaves unexplained is noise; `psr` measures the peak
    against that, `plain` against the sidelobes as they are.
    """
    values, p, inside = curve.values, curve.p, curve.inside
    side_mask = inside & ~near
    side = values[side_mask]
    if side.size < 10 or values[p] <= 0 or np.std(side) <= 0:
        return 0.0, 0.0, None
    height = values[p] - float(np.mean(side))
    plain = float(height / np.std(side))
    n = curve.ref_auto.size
    offsets = np.arange(values.size) - p
    periods = _curve_periods(values, inside, excl, curve.ref_auto)
    echoes = [values[p] * curve.ref_auto[offsets % n] / curve.ref_auto[0]]
    echoes += [_comb(values, inside, period) for period in periods]
    noise = min(float(np.std((values - e)[side_mask])) for e in echoes)
    psr = float(height / noise) if noise > 0 else plain
    # A repeating curve confirms the phase, not the cycle: only what the peak has over the same
    # lag a period or more away (the content that does not repeat) says that the streams share
    # this moment rather than merely the same rhythm. Compared per sample of overlap: the plain
    # sum favours the lag where the recordings overlap most.
    ks = curve.ks
    overlap = np.clip(np.minimum(curve.r_size, curve.s_size - ks) - np.maximum(0, -ks), 0, None)
    per_sample = values / np.maximum(overlap / max(int(overlap.max()), 1), 0.25)
    periodic = None
    for period in periods:
        comb = _comb(per_sample, inside, period)
        spread = float(np.std((per_sample - comb)[side_mask]))
        excess = float((per_sample[p] - comb[p]) / spread) if spread > 0 else 0.0
        if periodic is None or excess < periodic[1]:
            periodic = (period / rate, excess)
    return psr, plain, periodic


def _rival(curve: _Curve, near: np.ndarray, centre_s: float, half_width_s: float):
    """(share of the peak's height, lag) of the best other local maximum the search range could
    have chosen, heights above the sidelobe mean; (0, nan) when there is none."""
    values, lags, p = curve.values, curve.lags, curve.p
    side = values[curve.inside & ~near]
    peaks = np.flatnonzero((values[1:-1] > values[:-2]) & (values[1:-1] >= values[2:])) + 1
    peaks = peaks[(np.abs(lags[peaks] - centre_s) <= half_width_s) & ~near[peaks]]
    if not peaks.size or not side.size:
        return 0.0, math.nan
    q = int(peaks[np.argmax(values[peaks])])
    floor = float(np.mean(side))
    share = float(np.clip((values[q] - floor) / max(values[p] - floor, 1e-12), 0.0, 1.0))
    return share, float(lags[q])


def _lobe(values: np.ndarray, p: int, base: float) -> int:
    """Half-width (grid points) of the peak at p: where the curve falls below half its height."""
    half = base + 0.5 * (values[p] - base)
    below = np.flatnonzero(values < half)
    left = below[below < p]
    right = below[below > p]
    lo = p - left[-1] if left.size else p
    hi = right[0] - p if right.size else values.size - 1 - p
    return int(max(min(lo, hi), 1))


def _repeat(ac: np.ndarray, lobe: int) -> int:
    """The lag (grid points) of an autocorrelation's highest peak beyond twice the main lobe and
    within a third of its length, when that peak reaches half the zero-lag value; else 0."""
    if ac.size < 8 or ac[0] <= 0:
        return 0
    lo, hi = max(2 * lobe, 2), ac.size // 3
    if hi <= lo + 2:
        return 0
    seg = ac[lo:hi] / ac[0]
    peaks = np.flatnonzero((seg[1:-1] > seg[:-2]) & (seg[1:-1] >= seg[2:])) + 1
    if not peaks.size:
        return 0
    k = int(peaks[np.argmax(seg[peaks])])
    return lo + k if seg[k] >= 0.5 else 0


def _curve_periods(values: np.ndarray, inside: np.ndarray, lobe: int,
                   ref_auto: np.ndarray) -> list[int]:  # fmt: skip
    """Periods (grid points) the curve may repeat with: its own, and the reference's (from the
    reference's autocorrelation), each only when clear."""
    v = np.where(inside, values - values[inside].mean(), 0.0)
    m = 1 << int(np.ceil(np.log2(2 * v.size)))
    own = np.fft.irfft(np.abs(np.fft.rfft(v, m)) ** 2, m)[: v.size]
    found = {_repeat(own, lobe), _repeat(ref_auto[: v.size], lobe)}
    return sorted(p for p in found if p)


def _comb(values: np.ndarray, inside: np.ndarray, period: int, cycles: int = 4) -> np.ndarray:
    """Each lag's echo: the mean of the curve one to `cycles` periods either side of it."""
    total = np.zeros_like(values)
    count = np.zeros_like(values)
    idx = np.arange(values.size)
    for k in (*range(-cycles, 0), *range(1, cycles + 1)):
        j = idx + k * period
        ok = (j >= 0) & (j < values.size)
        ok[ok] &= inside[j[ok]]
        total[ok] += values[j[ok]]
        count[ok] += 1
    return np.where(count > 0, total / np.maximum(count, 1), float(values.mean()))


def _refined(lags: np.ndarray, values: np.ndarray, p: int, rate: float) -> float:
    """The peak's lag, refined between grid points by a parabola through its neighbours."""
    delta = 0.0
    if 0 < p < values.size - 1:
        y0, y1, y2 = values[p - 1], values[p], values[p + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            delta = float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    return float(lags[p] + delta / rate)


def _plain_psr(values: np.ndarray, p: int, rate: float, exclude_s: float = 0.5) -> float:
    """Peak over the spread of the curve outside +-exclude_s of it (drift segments' trust)."""
    excl = max(int(round(exclude_s * rate)), 1)
    side = np.concatenate([values[: max(p - excl, 0)], values[p + excl + 1 :]])
    if side.size < 10 or values[p] <= 0 or np.std(side) <= 0:
        return 0.0
    return float((values[p] - np.mean(side)) / np.std(side))
