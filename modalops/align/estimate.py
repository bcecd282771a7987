"""Clock estimation: each stream's offset and drift to the reference, from sync cues or markers.

Offsets follow `dataset.layout.ClockModel`: t_device = t_ref + offset_s + drift_ppm*1e-6*t_ref.
What is known about each clock comes from the dataset spec (`streams.<name>.clock`): the
starting guess (clock file or zero), the search range, and whether to estimate at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from modalops.align.correlate import AMBIGUOUS, Z_CYCLE, Correlation, correlate
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
    # The correlated pair (reference's, stream's), kept for the sync report card (align/audit.py);
    # never read by the estimate itself.
    envelopes: tuple[Envelope, Envelope] | None = field(default=None, repr=False)

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


# Representations that mark the same moments, and so may be correlated with each other: signed
# transitions, levels, unsigned events (an onset on one stream, a change on screen on the other).
FAMILY = {"edges": "edges", "level": "level", "onsets": "events", "motion": "events"}


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
        fallback.envelopes = est.envelopes
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
                         segments, pieces, curve=(glob.lags, glob.values), cue=glob.cue,
                         envelopes=(ref_env, env))  # fmt: skip
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
