"""Clock estimation: each stream's offset and drift to the reference, from sync cues or markers.

Offsets follow `dataset.layout.ClockModel`: t_device = t_ref + offset_s + drift_ppm*1e-6*t_ref.
What is known about each clock comes from the dataset spec (`streams.<name>.clock`): the
starting guess (clock file or zero), the search range, and whether to estimate at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from modalops.config.align import AlignConfig
from modalops.dataset.layout import ClockModel, SessionStreams
from modalops.dataset.spec import DatasetSpec
from modalops.kinds.base import Envelope, ReadBytes
from modalops.kinds.envelopes import CueError, edges

METHODS = ("estimate", "sync_markers", "metadata", "none", "reference")


@dataclass
class StreamEstimate:
    """How one stream's device clock maps onto the reference clock, and how sure we are."""

    session_id: str
    stream: str
    method: str  # one of METHODS
    offset_s: float
    drift_ppm: float
    confidence: float = math.nan  # peak-to-sidelobe ratio; nan where nothing was correlated
    fallback_reason: str | None = None
    segments: list[tuple[float, float, float]] = field(default_factory=list)  # (t_ref, offset, psr)
    # Piecewise clock after a detected jump: (t_ref_from, offset_s, drift_ppm), sorted; empty
    # means the single model (offset_s, drift_ppm) holds for the whole session.
    pieces: list[tuple[float, float, float]] = field(default_factory=list)
    usable: bool = True  # False: the stream is treated as absent (missing or quarantined)
    quarantine_session: bool = False  # the low-confidence policy rejects the whole session
    curve: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)  # lags, corr
    cue: str | None = (
        None  # the representations correlated, "<reference's>/<stream's>" (edges/level)
    )

    def clock(self) -> ClockModel:
        return ClockModel(self.offset_s, self.drift_ppm)

    def to_device(self, t_ref: np.ndarray | float) -> np.ndarray:
        t_ref = np.asarray(t_ref, dtype=np.float64)
        if not self.pieces:
            return t_ref + self.offset_s + self.drift_ppm * 1e-6 * t_ref
        starts = np.array([p[0] for p in self.pieces])
        i = np.clip(np.searchsorted(starts, t_ref, side="right") - 1, 0, len(starts) - 1)
        off = np.array([p[1] for p in self.pieces])[i]
        ppm = np.array([p[2] for p in self.pieces])[i]
        return t_ref + off + ppm * 1e-6 * t_ref

    def to_reference(self, t_device: np.ndarray | float) -> np.ndarray:
        t_device = np.asarray(t_device, dtype=np.float64)
        if not self.pieces:
            return (t_device - self.offset_s) / (1.0 + self.drift_ppm * 1e-6)
        # Invert each piece, keep the one whose reference range contains the result.
        out = np.full(t_device.shape, np.nan)
        bounds = [p[0] for p in self.pieces[1:]] + [np.inf]
        for (t_from, off, ppm), t_to in zip(self.pieces, bounds, strict=True):
            t = (t_device - off) / (1.0 + ppm * 1e-6)
            hit = np.isnan(out) & (t >= t_from) & (t < t_to)
            out[hit] = t[hit]
        return out


# ---- cross-correlation ------------------------------------------------------------------------


@dataclass
class Correlation:
    lag_s: float  # best lag: t_device - t_ref
    psr: float  # peak-to-sidelobe ratio
    lags: np.ndarray
    values: np.ndarray
    confidence: float = 0.0  # psr, lowered by a rival peak (see _confidence)
    rival: float = (
        0.0  # height of the best other peak in the search range, as a share of the peak's
    )
    rival_lag_s: float = math.nan
    at_edge: bool = False  # the peak sits on the search range's edge: the clock may lie beyond
    cue: str = ""  # which representations were correlated: "<reference's>/<stream's>"
    imprecise: tuple[float, float] | None = None  # (sub-window scatter, sample period) when lowered
    periodic: tuple[float, float] | None = None  # (curve period s, peak's excess z) when lowered


STAT_S = 10.0  # sidelobe statistics come from at least +-10 s of lags, however narrow the search
# Representations that mark the same moments, and so may be correlated with each other: signed
# transitions, levels, unsigned events (an onset on one stream, a change on screen on the other).
FAMILY = {"edges": "edges", "level": "level", "onsets": "events", "motion": "events"}
AMBIGUOUS = 0.5
# A repeating curve's peak must beat the mean of the curve one to four periods away by this many
# noise sigmas (one-sided p ~ 0.001) before the cycle, not only the phase, counts as found;
# until then the confidence is that margin, below any sensible min_confidence.
Z_CYCLE = 3.0  # a rival peak above this share of the main one starts to lower the confidence


def _lobe(values: np.ndarray, p: int, base: float) -> int:
    """Half-width (grid points) of the peak at p: where the curve falls below half its height."""
    half = base + 0.5 * (values[p] - base)
    below = np.flatnonzero(values < half)
    left = below[below < p]
    right = below[below > p]
    lo = p - left[-1] if left.size else p
    hi = right[0] - p if right.size else values.size - 1 - p
    return int(max(min(lo, hi), 1))


def correlate(
    ref: Envelope,
    sig: Envelope,
    centre_s: float,
    half_width_s: float,
    ref_range: tuple[float, float] | None = None,
    lag_only: bool = False,
) -> Correlation:
    """FFT cross-correlation of two cue representations (already in correlation form: edges,
    levels, onsets; `modalops.kinds.envelopes`) over lags centre +- half_width, with parabolic
    sub-sample refinement and a confidence that a nearby rival peak lowers.

    Lag L means sig(t + L) matches ref(t): the stream's device clock reads t_ref + L.
    `lag_only`: the refined lag and the plain peak-to-sidelobe ratio, without echoes, rivals or
    the wide lag range (sub-windows and drift segments need no more).
    """
    rate = ref.rate
    r, r0 = ref.values, ref.start_index
    if ref_range is not None:
        lo = max(int(np.ceil(ref_range[0] * rate)) - r0, 0)
        hi = min(int(np.floor(ref_range[1] * rate)) - r0, r.size)
        r, r0 = r[lo:hi], r0 + lo
    s = sig.values
    if r.size < 3 or s.size < 3 or not np.any(r) or not np.any(s):
        return Correlation(math.nan, 0.0, np.empty(0), np.empty(0))
    n = 1 << int(np.ceil(np.log2(r.size + s.size)))
    fr, fs = np.fft.rfft(r, n), np.fft.rfft(s, n)
    full = np.fft.irfft(np.conj(fr) * fs, n)
    # c[k] = sum_i r[i] s[i + k]; lag L = (sig.start - r0 + k) / rate.
    wide = half_width_s if lag_only else max(half_width_s, STAT_S)
    k_lo = int(np.ceil((centre_s - wide) * rate)) - (sig.start_index - r0)
    k_hi = int(np.floor((centre_s + wide) * rate)) - (sig.start_index - r0)
    ks = np.arange(k_lo, k_hi + 1)
    inside = (ks > -r.size) & (ks < s.size)  # beyond these no sample overlaps: zero correlation
    values = np.where(inside, full[ks % n], 0.0) / (np.linalg.norm(r) * np.linalg.norm(s))
    lags = (sig.start_index - r0 + ks) / rate
    search = np.flatnonzero(np.abs(lags - centre_s) <= half_width_s + 0.5 / rate)
    if search.size == 0:
        return Correlation(math.nan, 0.0, lags, values)
    p = int(search[np.argmax(values[search])])
    if lag_only:
        return Correlation(_refined(lags, values, p, rate), _plain_psr(values, p, rate),
                           lags, values)  # fmt: skip
    base = float(np.median(values[inside])) if inside.any() else 0.0
    excl = 2 * _lobe(values, p, base)
    offsets = np.arange(values.size) - p
    near = np.abs(offsets) <= excl
    # Echoes: were the peak right, the curve elsewhere would repeat the reference's own
    # autocorrelation around it, and a cue that repeats makes the curve repeat with its period.
    # What the better of those two echo models leaves unexplained is noise; the peak is measured
    # against that, so a periodic cue is not penalised for echoes the search range excludes
    # (those inside it are rivals, below).
    ar = np.fft.irfft(np.abs(fr) ** 2, n)
    side_mask = inside & ~near
    side = values[side_mask]
    psr = plain = 0.0
    periodic = None
    if side.size >= 10 and values[p] > 0 and np.std(side) > 0:
        height = values[p] - float(np.mean(side))
        plain = float(height / np.std(side))
        periods = _curve_periods(values, inside, excl, ar)
        combs = [_comb(values, inside, T) for T in periods]
        echoes = [values[p] * ar[offsets % n] / ar[0], *combs]
        noise = min(float(np.std((values - e)[side_mask])) for e in echoes)
        psr = float(height / noise) if noise > 0 else plain
        # A repeating curve confirms the phase, not the cycle: only what the peak has over the
        # same lag a period or more away (the content that does not repeat) says that the
        # streams share this moment rather than merely the same rhythm. Compared per sample of
        # overlap: the plain sum favours the lag where the recordings overlap most.
        overlap = np.clip(np.minimum(r.size, s.size - ks) - np.maximum(0, -ks), 0, None)
        per_sample = values / np.maximum(overlap / max(int(overlap.max()), 1), 0.25)
        for T in periods:
            comb = _comb(per_sample, inside, T)
            spread = float(np.std((per_sample - comb)[side_mask]))
            excess = float((per_sample[p] - comb[p]) / spread) if spread > 0 else 0.0
            if periodic is None or excess < periodic[1]:
                periodic = (T / rate, excess)
    # rival: the best other local maximum the search range could have chosen
    peaks = np.flatnonzero((values[1:-1] > values[:-2]) & (values[1:-1] >= values[2:])) + 1
    peaks = peaks[(np.abs(lags[peaks] - centre_s) <= half_width_s) & ~near[peaks]]
    rival, rival_lag = 0.0, math.nan
    if peaks.size and side.size:
        q = int(peaks[np.argmax(values[peaks])])
        floor = float(np.mean(side))
        rival = float(np.clip((values[q] - floor) / max(values[p] - floor, 1e-12), 0.0, 1.0))
        rival_lag = float(lags[q])
    at_edge = p in (search[0], search[-1]) and search.size > 2
    # Echoes the search range could have picked are real alternatives, not noise: with a rival
    # above AMBIGUOUS the peak is measured against every sidelobe, and lowered further the closer
    # the rival comes to it.
    conf = psr
    if rival > AMBIGUOUS:
        conf = plain * (1.0 - rival) / (1.0 - AMBIGUOUS)
    elif periodic is not None and periodic[1] < Z_CYCLE:
        # the cycle is not confirmed: all the data vouches for is the margin over its aliases
        conf = min(psr, max(periodic[1], 0.0))
    else:
        periodic = None  # no repeat, or the cycle is confirmed: nothing to report
    if at_edge:
        conf = 0.0
    return Correlation(_refined(lags, values, p, rate), psr, lags, values, conf, rival, rival_lag,
                       at_edge, periodic=periodic)  # fmt: skip


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


def _curve_periods(
    values: np.ndarray, inside: np.ndarray, lobe: int, ref_auto: np.ndarray
) -> list[int]:
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


# ---- drift -------------------------------------------------------------------------------------


def _fit_line(t: np.ndarray, o: np.ndarray) -> tuple[float, float]:
    """Least-squares offset(t) = a + b t; returns (a, b in ppm)."""
    if t.size < 2 or np.ptp(t) <= 0:
        return float(np.mean(o)), 0.0
    b, a = np.polyfit(t, o, 1)
    return float(a), float(b * 1e6)


def fit_clock(
    segments: list[tuple[float, float, float]],
    global_lag: float,
    t_mid: float,
    prior_ppm: float,
    cfg: AlignConfig,
) -> tuple[float, float, list[tuple[float, float, float]], str | None]:
    """Offset, ppm, pieces and a note from per-segment offsets (t_ref, offset, psr).

    Too few trusted segments: the global lag holds with the prior (metadata) drift, which over
    a short session moves the offset by milliseconds only.
    """
    good = [(t, o) for t, o, c in segments if c >= cfg.min_confidence]
    if len(good) < 2:
        note = None if len(segments) <= 1 else f"drift from metadata: {len(good)} trusted segments"
        return global_lag - prior_ppm * 1e-6 * t_mid, prior_ppm, [], note
    t = np.array([g[0] for g in good])
    o = np.array([g[1] for g in good])
    a, ppm = _fit_line(t, o)
    resid = o - (a + ppm * 1e-6 * t)
    if np.max(np.abs(resid)) > cfg.clock_jump_s:
        # A device restart: split where consecutive segment offsets jump, fit each piece.
        cuts = np.flatnonzero(np.abs(np.diff(o)) > cfg.clock_jump_s) + 1
        groups = np.split(np.arange(t.size), cuts)
        pieces = []
        for gi, g in enumerate(groups):
            pa, pppm = _fit_line(t[g], o[g]) if g.size >= 2 else (float(o[g[0]]), 0.0)
            if g.size < 2 or abs(pppm) > cfg.max_drift_ppm:
                pa, pppm = float(np.mean(o[g] - prior_ppm * 1e-6 * t[g])), prior_ppm
            start = -np.inf if gi == 0 else 0.5 * (t[groups[gi - 1][-1]] + t[g[0]])
            pieces.append((float(start), pa, pppm))
        return pieces[0][1], pieces[0][2], pieces, f"clock jump: {len(pieces)} pieces"
    if abs(ppm) > cfg.max_drift_ppm:
        return (
            global_lag - prior_ppm * 1e-6 * t_mid,
            prior_ppm,
            [],
            f"implausible drift {ppm:.0f} ppm",
        )
    return a, ppm, [], None


# ---- per stream --------------------------------------------------------------------------------


def _span(stream) -> tuple[float, float] | None:
    return None if stream is None else stream.span()


def _candidates(spec: DatasetSpec, session: SessionStreams, name: str, cfg: AlignConfig,
                read_bytes: ReadBytes | None, bad_files: frozenset[str]) -> dict[str, Envelope]:  # fmt: skip
    """The stream's cue representations, computed by its kind; CueError when it has none usable.

    A kind without `sync.candidates` offers the edges of its one envelope.
    """
    stream, cue = session.stream(name), spec.streams[name].cue_spec
    sync = spec.kind_of(name).sync
    if hasattr(sync, "candidates"):
        return sync.candidates(stream, cue, cfg.envelope_rate_hz, read_bytes, bad_files)
    return {"edges": edges(sync.envelope(stream, cue, cfg.envelope_rate_hz, read_bytes, bad_files))}


def _starting_clock(session: SessionStreams, name: str) -> ClockModel:
    """The starting-guess clock (clock file or zero, as the spec's clock.initial says)."""
    return session.clocks.get(name, ClockModel())


def _metadata(session: SessionStreams, name: str, reason: str | None = None) -> StreamEstimate:
    """An estimate that keeps the starting-guess clock."""
    clock = _starting_clock(session, name)
    return StreamEstimate(session.session_id, name, "metadata", clock.offset_s, clock.drift_ppm,
                          fallback_reason=reason)  # fmt: skip


def _from_markers(
    session: SessionStreams, name: str, ref_markers: np.ndarray
) -> StreamEstimate | str:
    marks = session.sync.get(name) if session.sync else None
    if marks is None:
        return "no sync markers for this stream"
    if marks.size != ref_markers.size or marks.size == 0:
        return f"sync markers ignored: {marks.size} markers vs {ref_markers.size} on the reference"
    prior = _starting_clock(session, name).drift_ppm
    offsets = marks - ref_markers
    if marks.size >= 2 and np.ptp(ref_markers) > 0:
        a, ppm = _fit_line(ref_markers, offsets)
    else:
        a, ppm = float(offsets[0] - prior * 1e-6 * ref_markers[0]), prior
    return StreamEstimate(session.session_id, name, "sync_markers", a, ppm,
                          segments=[(float(t), float(o), math.nan) for t, o in zip(ref_markers, offsets, strict=True)])  # fmt: skip


def _low_confidence(
    session: SessionStreams, name: str, est: StreamEstimate, reason: str, cfg: AlignConfig
) -> StreamEstimate:
    """Apply low_confidence_policy to an untrusted estimate; the reason is always kept."""
    if cfg.low_confidence_policy == "metadata":
        fallback = _metadata(session, name, f"{reason}; starting-guess clock used")
        fallback.confidence, fallback.curve, fallback.segments, fallback.cue = (
            est.confidence,
            est.curve,
            est.segments,
            est.cue,
        )
        return fallback
    est.usable = False
    est.quarantine_session = cfg.low_confidence_policy == "quarantine_session"
    what = "session quarantined" if est.quarantine_session else "stream quarantined"
    est.fallback_reason = f"{reason}; {what}"
    return est


def _uncorrelated(
    session: SessionStreams, name: str, reason: str, cfg: AlignConfig
) -> StreamEstimate:
    """Nothing could be correlated: the starting guess at zero confidence, under the policy."""
    clock = _starting_clock(session, name)
    est = StreamEstimate(session.session_id, name, "estimate", clock.offset_s, clock.drift_ppm, 0.0)
    return _low_confidence(session, name, est, reason, cfg)


def _best_pair(ref_cands: dict[str, Envelope], cands: dict[str, Envelope], centre: float,
               search_s: float, ref_span: tuple[float, float],
               period: float) -> tuple[Correlation, Envelope, Envelope]:  # fmt: skip
    """Every reference representation against every one of the stream's; the surest pair.

    A pair whose sub-windows disagree on the lag by more than a sample period (`period`, the
    coarser stream's) has its confidence scaled down by that ratio: its peak is real, but where
    it sits depends on which part of the session is looked at.
    """
    tried = []
    for rn, renv in ref_cands.items():
        for sn, senv in cands.items():
            if FAMILY.get(rn, rn) != FAMILY.get(sn, sn):
                continue  # a level against an edge peaks off the true lag by the lobe's slope
            c = correlate(renv, senv, centre, search_s)
            c.cue = f"{rn}/{sn}"
            if np.isfinite(c.lag_s):
                tried.append((c, renv, senv))
    if not tried:
        return Correlation(math.nan, 0.0, np.empty(0), np.empty(0)), None, None
    # Scatter only ever lowers a confidence: check the pairs surest first and stop once the
    # best checked one beats every unchecked one (most sessions need one check, not nine).
    tried.sort(key=lambda t: -t[0].confidence)
    best = None
    for c, renv, senv in tried:
        if best is not None and best[0].confidence >= c.confidence:
            break
        if c.confidence > 0:
            spread = _spread(renv, senv, c.lag_s, ref_span, min(search_s, 1.0))
            if spread > period:
                c.confidence *= period / spread
                c.imprecise = (spread, period)
        if best is None or c.confidence > best[0].confidence:
            best = (c, renv, senv)
    return best


SUB_WINDOWS = 4


def _spread(ref_env: Envelope, env: Envelope, lag: float, ref_span: tuple[float, float],
            search_s: float) -> float:  # fmt: skip
    """How far the lags of a few sub-windows scatter around the session's lag (median |dev|, s)."""
    bounds = np.linspace(ref_span[0], ref_span[1], SUB_WINDOWS + 1)
    lags = [correlate(ref_env, env, lag, search_s, ref_range=(a, b), lag_only=True).lag_s
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)]  # fmt: skip
    lags = np.array([x for x in lags if np.isfinite(x)])
    return float(np.median(np.abs(lags - lag))) if lags.size >= 2 else 0.0


def _period(session: SessionStreams, name: str, spec: DatasetSpec) -> float:
    """The coarser native sample period of the stream and the reference (seconds)."""

    def one(stream) -> float:
        if getattr(stream, "sample_rate", None):
            return 1.0 / float(stream.sample_rate)
        times = getattr(stream, "times", None)
        return float(np.median(np.diff(times))) if times is not None and len(times) > 1 else 0.0

    return max(one(session.stream(name)), one(session.stream(spec.reference)), 1e-3)


def _doubt(c: Correlation, search_s: float, cfg: AlignConfig) -> str:
    """Why an estimate is not trusted, naming the reason that lowered its confidence."""
    if c.at_edge:
        return (f"low confidence: the best lag {c.lag_s:+.2f} s sits on the edge of the search "
                f"range (+-{search_s:g} s around the starting guess): the clock may lie outside it")  # fmt: skip
    if c.rival > AMBIGUOUS:
        return (f"ambiguous: a second peak {c.rival:.0%} as high at lag {c.rival_lag_s:+.2f} s, "
                f"{abs(c.rival_lag_s - c.lag_s):.2f} s from the best ({c.lag_s:+.2f} s); "
                f"confidence {c.confidence:.1f} < {cfg.min_confidence:g}")  # fmt: skip
    if c.periodic:
        return (f"periodic: the curve repeats every {c.periodic[0]:.2f} s and the best lag "
                f"({c.lag_s:+.2f} s) beats the same lag a period or more away by only "
                f"{c.periodic[1]:.1f} noise sigmas (< {Z_CYCLE:g}): a clock a period off fits almost "
                f"as well; confidence {c.confidence:.1f} < {cfg.min_confidence:g} ({c.cue})")  # fmt: skip
    if c.imprecise:
        return (f"imprecise: sub-window lags scatter {c.imprecise[0]:.2f} s around {c.lag_s:+.2f} s "
                f"(more than a sample period, {c.imprecise[1]:.2f} s); confidence "
                f"{c.confidence:.1f} < {cfg.min_confidence:g} ({c.cue})")  # fmt: skip
    return f"low confidence: peak-to-sidelobe {c.psr:.1f} < {cfg.min_confidence:g} ({c.cue})"


def _estimate_one(
    spec: DatasetSpec,
    session: SessionStreams,
    name: str,
    ref_cands: dict[str, Envelope],
    ref_span: tuple[float, float],
    cfg: AlignConfig,
    read_bytes: ReadBytes | None,
    bad_files: frozenset[str],
) -> StreamEstimate:
    meta = _starting_clock(session, name)
    search_s = spec.streams[name].clock.search_s
    t_mid = 0.5 * (ref_span[0] + ref_span[1])
    try:
        cands = _candidates(spec, session, name, cfg, read_bytes, bad_files)
    except CueError as exc:
        return _uncorrelated(session, name, f"no usable sync cue ({exc})", cfg)
    # the spec's clock.search_s is measured from the starting guess (clock.initial)
    centre = float(meta.to_device(t_mid) - t_mid)
    # precision floor: the coarser native period, and no finer than two envelope grid steps
    period = max(_period(session, name, spec), 2.0 / cfg.envelope_rate_hz)
    glob, ref_env, env = _best_pair(ref_cands, cands, centre, search_s, ref_span, period)
    if not np.isfinite(glob.lag_s):
        return _uncorrelated(session, name, "no sync-cue transitions to correlate", cfg)
    duration = ref_span[1] - ref_span[0]
    n_seg = int(min(cfg.drift_segments, max(duration // cfg.min_segment_s, 1)))
    segments = [(t_mid, glob.lag_s, glob.confidence)]
    if n_seg >= 2:
        bounds = np.linspace(ref_span[0], ref_span[1], n_seg + 1)
        segments = []
        # a handful of segments, not samples; a clock jump may move a segment by seconds
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            c = correlate(ref_env, env, glob.lag_s, search_s, ref_range=(a, b), lag_only=True)
            if np.isfinite(c.lag_s):
                segments.append((0.5 * (a + b), c.lag_s, c.psr))
    offset, ppm, pieces, note = fit_clock(segments, glob.lag_s, t_mid, meta.drift_ppm, cfg)
    if pieces:
        # A clock jump gives the whole-session curve one peak per piece, so it looks ambiguous;
        # the segments, each on one side of the jump, are what the fit rests on.
        glob.confidence = float(np.median([c for _, _, c in segments]))
    est = StreamEstimate(session.session_id, name, "estimate", offset, ppm, glob.confidence, note,
                         segments, pieces, curve=(glob.lags, glob.values), cue=glob.cue)  # fmt: skip
    if glob.confidence < cfg.min_confidence:
        return _low_confidence(session, name, est, _doubt(glob, search_s, cfg), cfg)
    return est


def estimate_clocks(
    session: SessionStreams,
    spec: DatasetSpec,
    cfg: AlignConfig,
    read_bytes: ReadBytes | None = None,
    bad_files: frozenset[str] = frozenset(),
) -> dict[str, StreamEstimate]:
    """Every stream's clock relative to the reference; never reads the generator's truth.

    A stream is estimated when align.mode is estimate, its spec says `clock.estimate`, and both
    it and the reference declare a sync cue; otherwise it keeps its starting guess (or takes
    explicit sync markers, which win over everything when the session has them).
    """
    sid, ref = session.session_id, spec.reference
    out: dict[str, StreamEstimate] = {}
    ref_stream = session.stream(ref)
    ref_span = _span(ref_stream)
    ref_env: dict[str, Envelope] | None = None
    ref_error: str | None = None
    ref_marks = session.sync.get(ref) if session.sync else None
    ref_cue = spec.streams[ref].cue_spec.kind != "none"
    for name, sspec in spec.streams.items():
        stream = session.stream(name)
        if stream is None or _span(stream) is None:
            why = _problem_for(session, name)
            out[name] = StreamEstimate(sid, name, "none", 0.0, 0.0, fallback_reason=f"stream missing: {why or 'no data'}", usable=False)  # fmt: skip
            continue
        if name == ref:
            out[name] = StreamEstimate(sid, name, "reference", 0.0, 0.0)
            continue
        if cfg.mode == "none":
            out[name] = StreamEstimate(sid, name, "none", 0.0, 0.0)
            continue
        wants = sspec.clock.estimate and sspec.cue_spec.kind != "none"
        if cfg.mode == "metadata" or (not wants and ref_marks is None):
            out[name] = _metadata(session, name)
            continue
        marker_note = None
        if ref_marks is not None:
            got = _from_markers(session, name, ref_marks)
            if isinstance(got, StreamEstimate):
                out[name] = got
                continue
            marker_note = got
        if not wants:
            out[name] = _metadata(session, name, marker_note)
            continue
        if not ref_cue:
            out[name] = _metadata(session, name, f"reference {ref} declares no sync cue")
            continue
        if ref_env is None and ref_error is None and ref_span is not None:
            try:
                ref_env = _candidates(spec, session, ref, cfg, read_bytes, bad_files)
            except CueError as exc:
                ref_error = f"reference {ref} has no usable sync cue ({exc})"
        if ref_env is None:
            out[name] = _uncorrelated(session, name, ref_error or f"reference {ref} missing", cfg)
            continue
        out[name] = _estimate_one(
            spec, session, name, ref_env, ref_span, cfg, read_bytes, bad_files
        )
        if (
            marker_note
            and out[name].fallback_reason is None
            and session.sync
            and name in session.sync
        ):
            out[name].fallback_reason = marker_note
    return out


def _problem_for(session: SessionStreams, name: str) -> str | None:
    """The read error that made a stream missing, if the layout reader recorded one."""
    return next((str(err) for stream, err in session.problems if stream == name), None)
