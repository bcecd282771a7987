"""The sync report card: one self-contained HTML page, worst session and stream first, showing how
each stream's clock was found, how sure and how wrong it is, and what could not be synced.

`stream_traces` keeps, per estimated stream, what the page plots (the correlation curve, the cue
envelopes before and after correction, downsampled) and the interval of its offset and drift;
`render_sync_report` turns the alignment report, the traces and the quarantine into the page.
Intervals are measured, never assumed (docs/alignment.md, "Sync report card").
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from modalops.align.correlate import correlate
from modalops.align.estimate import SUB_WINDOWS, StreamEstimate
from modalops.config.align import AlignConfig
from modalops.dataset.layout import ClockModel
from modalops.kinds.base import Envelope

OVERLAY_S = 20.0  # seconds of cue shown before/after correction: enough for a few transitions
SUB_SEARCH_S = 1.0  # sub-window lags are searched +-1 s around the session's, as estimate._spread
PLOT_POINTS = 240  # points per plotted series: the page stays small with hundreds of streams
LEVEL = 0.95  # confidence level of the intervals


@dataclass
class Interval:
    """Half-widths of the offset and drift intervals at LEVEL; nan where not measured, `basis`
    saying from what (or why not)."""

    offset_s: float = math.nan
    drift_ppm: float = math.nan
    basis: str = "not measured"


@dataclass
class StreamTrace:
    """What the page shows of one stream beyond the report's row: its plots and its interval."""

    session_id: str
    stream: str
    interval: Interval
    curve: tuple[np.ndarray, np.ndarray] | None = None  # lags (s), normalised correlation
    peak_lag_s: float = math.nan
    # reference-clock times and the cue values there: the reference's, the stream's on its
    # starting-guess clock (before) and on the estimated clock (after)
    overlay: dict[str, np.ndarray] = field(default_factory=dict)


# ---- intervals ---------------------------------------------------------------------------------


def _t95(dof: int) -> float:
    return float(stats.t.ppf(0.5 + LEVEL / 2, dof))


def _segment_interval(est: StreamEstimate, cfg: AlignConfig) -> Interval | None:
    """OLS confidence intervals of the intercept (offset at t_ref=0) and slope (drift) of the
    segment offsets the estimator fitted; None unless that fit is what the estimate holds."""
    if est.method == "sync_markers":
        used = [(t, o) for t, o, _ in est.segments]
    else:
        used = [(t, o) for t, o, c in est.segments if c >= cfg.min_confidence]
    if len(used) < 3:
        return None
    t = np.array([u[0] for u in used])
    o = np.array([u[1] for u in used])
    sxx = float(np.sum((t - t.mean()) ** 2))
    if sxx <= 0:
        return None
    b, a = np.polyfit(t, o, 1)
    if abs(a - est.offset_s) > 1e-6 or abs(b * 1e6 - est.drift_ppm) > 1e-3:
        return None  # the estimator kept another clock (e.g. an implausible drift was refused)
    s = math.sqrt(float(np.sum((o - (a + b * t)) ** 2)) / (len(t) - 2))
    q = _t95(len(t) - 2)
    se_a = s * math.sqrt(1.0 / len(t) + t.mean() ** 2 / sxx)
    return Interval(q * se_a, q * s / math.sqrt(sxx) * 1e6, f"{len(t)} segment offsets (OLS)")


def _subwindow_interval(est: StreamEstimate, ref_span: tuple[float, float]) -> Interval | None:
    """Spread of the lags of SUB_WINDOWS parts of the session (the estimator's own scatter check):
    the standard error of their mean, times Student's t; drift was not measured this way."""
    if est.envelopes is None:
        return None
    ref_env, env = est.envelopes
    bounds = np.linspace(ref_span[0], ref_span[1], SUB_WINDOWS + 1)
    lags = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        mid = 0.5 * (a + b)
        centre = float(est.to_device(mid) - mid)
        c = correlate(ref_env, env, centre, SUB_SEARCH_S, ref_range=(a, b), lag_only=True)
        if np.isfinite(c.lag_s):
            lags.append(c.lag_s - centre)
    if len(lags) < 3:
        return None
    half = _t95(len(lags) - 1) * float(np.std(lags, ddof=1)) / math.sqrt(len(lags))
    return Interval(half, math.nan, f"{len(lags)} sub-window lags; drift not measured")


def clock_interval(
    est: StreamEstimate, cfg: AlignConfig, ref_span: tuple[float, float] | None
) -> Interval:
    """The interval of a measured clock (docs/alignment.md): from the drift segments when the
    clock was fitted from three or more, else from sub-window lags; floored at half a grid step."""
    if est.method not in ("estimate", "sync_markers"):
        return Interval(basis="not measured (" + est.method + ")")
    if est.pieces:
        return Interval(basis=f"piecewise clock ({len(est.pieces)} pieces): no single interval")
    got = _segment_interval(est, cfg)
    if got is None and ref_span is not None:
        got = _subwindow_interval(est, ref_span)
    if got is None:
        return Interval(basis="too few segments or sub-windows with a lag")
    # below half an envelope grid step a lag is interpolated, not resolved
    got.offset_s = max(got.offset_s, 0.5 / cfg.envelope_rate_hz)
    return got


# ---- traces ------------------------------------------------------------------------------------


def _downsample(
    x: np.ndarray, y: np.ndarray, n: int = PLOT_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """At most n points, each bin keeping its largest |value| (spikes and peaks survive)."""
    if x.size <= n:
        return x, y
    idx = np.array_split(np.arange(x.size), n)
    keep = [i[np.nanargmax(np.abs(np.nan_to_num(y[i])))] for i in idx]
    return x[keep], y[keep]


def _cue_at(env: Envelope, t_device: np.ndarray) -> np.ndarray:
    return np.interp(t_device, env.times(), env.values, left=np.nan, right=np.nan)


def _overlay(est: StreamEstimate, start: ClockModel) -> dict[str, np.ndarray]:
    """OVERLAY_S of the reference's cue from its first strong transition, with the stream's cue
    read at the reference times through the starting-guess clock and the estimated one."""
    if est.envelopes is None:
        return {}
    ref_env, env = est.envelopes
    t, r = ref_env.times(), ref_env.values
    if not r.size or not np.any(r):
        return {}
    first = int(np.argmax(np.abs(r) >= 0.5 * np.max(np.abs(r))))
    t0 = max(t[0], t[first] - 2.0)
    inside = (t >= t0) & (t <= t0 + OVERLAY_S)
    tw = t[inside]
    out = {}
    for name, values in (
        ("reference", r[inside]),
        ("before", _cue_at(env, np.asarray(start.to_device(tw)))),
        ("after", _cue_at(env, est.to_device(tw))),
    ):
        x, y = _downsample(tw, values)
        out["t_" + name], out[name] = x, y
    return out


def stream_traces(
    estimates: list[StreamEstimate],
    starting: dict[str, ClockModel],
    ref_span: tuple[float, float] | None,
    cfg: AlignConfig,
) -> list[StreamTrace]:
    """One trace per non-reference stream of a session (its plots and interval)."""
    out = []
    for est in estimates:
        if est.method == "reference":
            continue
        trace = StreamTrace(est.session_id, est.stream, clock_interval(est, cfg, ref_span))
        if est.curve is not None and est.curve[0].size:
            lags, values = est.curve
            trace.peak_lag_s = float(lags[int(np.argmax(values))])
            trace.curve = _downsample(np.asarray(lags), np.asarray(values))
        trace.overlay = _overlay(est, starting.get(est.stream, ClockModel()))
        out.append(trace)
    return out


# ---- worst first -------------------------------------------------------------------------------

TIERS = ("not synced", "stream unusable", "fallback", "estimated", "not estimated")


def verdict(row: pd.Series) -> str:
    """Which of TIERS a report row falls in (the first is the worst)."""
    if row["session_status"] != "ok":
        return "not synced"
    if not bool(row["usable"]):
        return "stream unusable"
    if pd.notna(row["fallback_reason"]):
        return "fallback"
    if row["method"] in ("estimate", "sync_markers"):
        return "estimated"
    return "not estimated"


def worst_first(report: pd.DataFrame) -> pd.DataFrame:
    """The report's non-reference rows with a `verdict`, sessions ordered by their worst stream
    (tier, then lowest confidence, then largest |residual|), streams likewise inside a session."""
    rows = report[report["method"].fillna("") != "reference"].copy()
    rows["verdict"] = [verdict(r) for _, r in rows.iterrows()]
    rows["_tier"] = rows["verdict"].map(TIERS.index)
    rows["_conf"] = rows["confidence"].astype(float).fillna(math.inf)
    res = rows[["residual_offset_s", "residual_at_end_s"]].astype(float).abs().max(axis=1)
    rows["_res"] = -res.fillna(0.0)
    key = ["_tier", "_conf", "_res"]
    worst = rows.sort_values(key, kind="stable").groupby("session_id", sort=False).head(1)
    order = {sid: i for i, sid in enumerate(worst["session_id"])}
    rows["_session"] = rows["session_id"].map(order)
    rows = rows.sort_values(["_session", *key], kind="stable")
    return rows.drop(columns=["_tier", "_conf", "_res", "_session"]).reset_index(drop=True)


# ---- the page ----------------------------------------------------------------------------------

COLOURS = {"reference": "#555", "before": "#d62728", "after": "#1f77b4", "curve": "#2c7f2c"}
TIER_COLOURS = {
    "not synced": "#b00020",
    "stream unusable": "#b00020",
    "fallback": "#c77700",
    "estimated": "#1b7a1b",
    "not estimated": "#666",
}
CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse} td,th{padding:3px 6px;border-bottom:1px solid #ddd;
vertical-align:middle;text-align:left} th{background:#f3f3f3;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{color:#fff;border-radius:3px;padding:1px 5px;white-space:nowrap;font-size:12px}
.why{max-width:360px;font-size:12px;color:#444} .muted{color:#888}
.key span{display:inline-block;width:14px;height:3px;margin:0 4px 3px 10px}
tr.first td{border-top:2px solid #999} svg{display:block}
"""


def _num(x: float, fmt: str) -> str:
    return "–" if x is None or not np.isfinite(x) else format(x, fmt)


def _pm(x: float, half: float, fmt: str) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return format(x, fmt) + ("" if not np.isfinite(half) else " ± " + format(half, fmt))


def _svg(series: list[tuple[np.ndarray, np.ndarray, str]], width: int = 170, height: int = 46,
         vline: float | None = None, title: str = "") -> str:  # fmt: skip
    """Inline SVG of a few lines on shared axes; NaN points break a line."""
    xs = np.concatenate([s[0] for s in series]) if series else np.empty(0)
    ys = np.concatenate([s[1] for s in series]) if series else np.empty(0)
    ok = np.isfinite(xs) & np.isfinite(ys)
    if not ok.any():
        return '<span class="muted">no data</span>'
    x0, x1 = float(xs[ok].min()), float(xs[ok].max())
    y0, y1 = float(ys[ok].min()), float(ys[ok].max())
    sx = (width - 2) / ((x1 - x0) or 1.0)
    sy = (height - 4) / ((y1 - y0) or 1.0)
    parts = []
    for x, y, colour in series:
        good = np.isfinite(x) & np.isfinite(y)
        for run in np.split(np.arange(x.size), np.flatnonzero(np.diff(good.astype(int))) + 1):
            run = run[good[run]]
            if run.size < 2:
                continue
            pts = " ".join(
                f"{1 + (x[i] - x0) * sx:.1f},{height - 2 - (y[i] - y0) * sy:.1f}" for i in run
            )
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1" points="{pts}"/>'
            )
    if vline is not None and np.isfinite(vline):
        vx = 1 + (vline - x0) * sx
        parts.append(f'<line x1="{vx:.1f}" x2="{vx:.1f}" y1="0" y2="{height}" stroke="#000" '
                     'stroke-dasharray="2,2" stroke-width="0.8"/>')  # fmt: skip
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img"><title>{html.escape(title)}</title>{"".join(parts)}</svg>')  # fmt: skip


def _curve_svg(trace: StreamTrace | None) -> str:
    if trace is None or trace.curve is None:
        return '<span class="muted">not correlated</span>'
    lags, values = trace.curve
    title = (
        f"correlation against lag {lags[0]:+.1f}..{lags[-1]:+.1f} s; peak {trace.peak_lag_s:+.3f} s"
    )
    return _svg([(lags, values, COLOURS["curve"])], vline=trace.peak_lag_s, title=title)


def _overlay_svg(trace: StreamTrace | None, which: str) -> str:
    if trace is None or not trace.overlay:
        return '<span class="muted">no cue envelopes</span>'
    o = trace.overlay
    series = [(o["t_reference"], o["reference"], COLOURS["reference"]),
              (o["t_" + which], o[which], COLOURS[which])]  # fmt: skip
    span = f"{o['t_reference'][0]:.0f}-{o['t_reference'][-1]:.0f} s"
    return _svg(series, title=f"reference cue and the stream's, {which} correction, t_ref {span}")


def _why(row: pd.Series) -> str:
    reasons = [str(r) for r in (row["session_reason"], row["fallback_reason"]) if pd.notna(r)]
    return html.escape("; ".join(dict.fromkeys(reasons)))


def _row_html(row: pd.Series, trace: StreamTrace | None, first: bool, rank: int) -> str:
    iv = trace.interval if trace is not None else Interval()
    res0, res1 = float(row["residual_offset_s"]), float(row["residual_at_end_s"])
    usable = bool(row["usable"])  # an unusable stream's 0 s is a placeholder, not a clock
    offset = float(row["offset_s"]) if usable else math.nan
    drift = float(row["drift_ppm"]) if usable else math.nan
    inside = "–"
    if np.isfinite(res0) and np.isfinite(iv.offset_s):
        inside = "yes" if abs(res0) <= iv.offset_s else "<b>no</b>"
    colour = TIER_COLOURS[row["verdict"]]
    stream = "–" if pd.isna(row["stream"]) else html.escape(str(row["stream"]))
    cells = [
        f'<td class="n">{rank}</td>',
        f"<td>{html.escape(str(row['session_id'])) if first else ''}</td>",
        f"<td>{stream}</td>",
        f'<td><span class="badge" style="background:{colour}">{row["verdict"]}</span></td>',
        f'<td class="n">{_pm(offset, iv.offset_s, "+.3f")}</td>',
        f'<td class="n">{_pm(drift, iv.drift_ppm, "+.1f")}</td>',
        f'<td class="n">{_num(float(row["confidence"]), ".1f")}</td>',
        f"<td>{html.escape(str(row['cue'])) if pd.notna(row['cue']) else '–'}</td>",
        f'<td class="n">{_num(res0, "+.3f")} / {_num(res1, "+.3f")}</td>',
        f"<td>{inside}</td>",
        f"<td>{_curve_svg(trace)}</td>",
        f"<td>{_overlay_svg(trace, 'before')}</td>",
        f"<td>{_overlay_svg(trace, 'after')}</td>",
        f'<td class="why">{_why(row)}<div class="muted">{html.escape(iv.basis)}</div></td>',
    ]
    return f'<tr class="{"first" if first else ""}">{"".join(cells)}</tr>'


HEADER = ("#", "session", "stream", "verdict", "offset (s)", "drift (ppm)", "confidence", "cue",
          "residual start / end (s)", "truth in interval", "correlation curve",
          "cue before correction", "cue after correction", "why / interval from")  # fmt: skip


def _headline(rows: pd.DataFrame, report: pd.DataFrame, traces: list[StreamTrace]) -> str:
    sessions = report.drop_duplicates("session_id")
    counts = rows["verdict"].value_counts()
    ref = report.loc[report["method"] == "reference", "stream"].dropna().unique()
    res = rows.loc[rows["verdict"] == "estimated", "residual_offset_s"].astype(float).abs().dropna()
    bits = [
        f"{len(sessions)} sessions, {int((sessions['session_status'] != 'ok').sum())} not synced",
        ", ".join(f"{int(counts.get(t, 0))} {t}" for t in TIERS if counts.get(t, 0)),
        f"offsets relative to the reference stream {', '.join(map(str, ref)) or '–'}",
    ]
    if len(res):
        bits.append(f"|residual| against truth: median {res.median():.3f} s, max {res.max():.3f} s")
    return "<p>" + " · ".join(html.escape(b) for b in bits) + "</p>"


def render_sync_report(
    report: pd.DataFrame,
    traces: list[StreamTrace],
    quarantine: pd.DataFrame | None = None,
    title: str = "Sync report card",
) -> str:
    """The page: a headline, one table row per session x non-reference stream, worst first, and
    the align quarantine's rows (why sessions and streams could not be used)."""
    rows = worst_first(report)
    by_key = {(t.session_id, t.stream): t for t in traces}
    body, last = [], None
    for i, row in rows.iterrows():
        sid = str(row["session_id"])
        trace = by_key.get((sid, None if pd.isna(row["stream"]) else str(row["stream"])))
        body.append(_row_html(row, trace, sid != last, i + 1))
        last = sid
    key = "".join(
        f'<span style="background:{COLOURS[k]}"></span>{k}'
        for k in ("reference", "before", "after", "curve")
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        _headline(rows, report, traces),
        f'<p class="key">Plots: {key}; dashed line: the correlation peak. Intervals: '
        f"{LEVEL:.0%}, from measured spread (docs/alignment.md).</p>",
        "<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in HEADER) + "</tr></thead>",
        "<tbody>" + "".join(body) + "</tbody></table>",
    ]
    if quarantine is not None and len(quarantine):
        cols = [c for c in ("stage", "session_id", "stream", "uri", "reason") if c in quarantine]
        q = quarantine[cols].astype("string").fillna("–")
        q = q.groupby(cols, sort=True).size().reset_index(name="rows")
        lines = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in [*cols, "rows"])
            + "</tr>"
            for _, r in q.iterrows()
        )
        head = "".join(f"<th>{c}</th>" for c in [*cols, "rows"])
        parts.append(
            f"<h2>Quarantine ({len(quarantine)} rows)</h2><details><summary>sessions, streams, "
            "files and windows set aside, with the reason</summary><table><thead><tr>"
            f"{head}</tr></thead><tbody>{lines}</tbody></table></details>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = [
    "Interval",
    "StreamTrace",
    "clock_interval",
    "render_sync_report",
    "stream_traces",
    "verdict",
    "worst_first",
]
