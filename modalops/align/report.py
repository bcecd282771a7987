"""Alignment report: per session and stream, the clock found, how sure, how wrong, how complete."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from modalops.align.estimate import StreamEstimate
from modalops.align.session import AlignedSession
from modalops.config.align import AlignConfig
from modalops.dataset.layout import TRUTH_DIR, ClockModel
from modalops.store import ObjectStore, join_key

REPORT_COLUMNS = (
    "session_id", "stream", "session_status", "session_reason", "method", "usable", "offset_s",
    "drift_ppm", "confidence", "cue", "fallback_reason", "n_segments", "n_pieces", "residual_offset_s",
    "residual_at_end_s", "completeness", "windows_total", "windows_kept", "windows_present",
    "absent_before_start", "absent_after_end", "absent_gap", "absent_missing",
    "dropped_boundary", "dropped_unlabelled", "dropped_missing",
)  # fmt: skip


def read_truth(store: ObjectStore, session_id: str) -> dict[str, ClockModel] | None:
    """True clocks of synthetic data (truth/<sid>.json, optional) if present; residuals only."""
    key = join_key(TRUTH_DIR, f"{session_id}.json")
    if not store.exists(key):
        return None
    try:
        doc = json.loads(store.get_bytes(key))
        doc = doc.get("streams", doc)
        return {
            name: ClockModel(float(v.get("offset_s", 0.0)), float(v.get("drift_ppm", 0.0)))
            for name, v in doc.items()
            if isinstance(v, dict)
        }
    except (ValueError, TypeError, AttributeError):
        return None  # truth is optional evaluation data: a bad file only loses the residuals


def build_report(
    session_id: str,
    aligned: AlignedSession | None,
    truth: dict[str, ClockModel] | None = None,
    reason: str | None = None,
    skipped_as: str = "quarantined",
) -> pd.DataFrame:
    """Report rows for one session (one per stream; one placeholder row if nothing was estimated).

    `aligned` None: the session was skipped before alignment, with status `skipped_as`
    (quarantined, or not_labelled) for `reason`.
    """
    if aligned is None:
        estimates, stats, status = [], {}, skipped_as
        dropped, n_windows, kept, ref_end = pd.Series(dtype=str), 0, 0, None
    else:
        estimates, stats = aligned.estimates, aligned.stats
        status, reason = aligned.status, aligned.reason
        dropped = aligned.dropped["reason"].astype(str)
        n_windows, kept = aligned.n_windows, len(aligned.samples)
        ref_end = float(aligned.samples["t_end"].max()) if kept else None
    rows = []
    for est in estimates or [None]:
        st = stats.get(est.stream, {}) if est is not None else {}
        res0 = res1 = math.nan
        if (
            est is not None
            and truth
            and est.stream in truth
            and est.usable
            and est.method != "reference"
        ):
            true = truth[est.stream]
            res0 = float(est.to_device(0.0) - true.to_device(0.0))
            t_end = ref_end if ref_end is not None else _end_guess(est)
            res1 = float(est.to_device(t_end) - true.to_device(t_end))
        rows.append({
            "session_id": session_id,
            "stream": est.stream if est else None,
            "session_status": status,
            "session_reason": reason,
            "method": est.method if est else None,
            "usable": bool(est.usable) if est else False,
            "offset_s": est.offset_s if est else math.nan,
            "drift_ppm": est.drift_ppm if est else math.nan,
            "confidence": est.confidence if est else math.nan,
            "cue": est.cue if est else None,
            "fallback_reason": est.fallback_reason if est else None,
            "n_segments": len(est.segments) if est else 0,
            "n_pieces": max(len(est.pieces), 1) if est else 0,
            "residual_offset_s": res0,
            "residual_at_end_s": res1,
            "completeness": st.get("completeness", math.nan),
            "windows_total": n_windows,
            "windows_kept": kept,
            "windows_present": st.get("windows_present", 0),
            "absent_before_start": st.get("absent_before_start", 0),
            "absent_after_end": st.get("absent_after_end", 0),
            "absent_gap": st.get("absent_gap", 0),
            "absent_missing": st.get("absent_missing", 0),
            "dropped_boundary": int((dropped == "boundary").sum()),
            "dropped_unlabelled": int((dropped == "unlabelled").sum()),
            "dropped_missing": int(dropped.str.startswith("missing_").sum()),
        })  # fmt: skip
    df = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    for c in (
        "session_id",
        "stream",
        "session_status",
        "session_reason",
        "method",
        "cue",
        "fallback_reason",
    ):
        df[c] = df[c].astype("string")
    return df


def _end_guess(est: StreamEstimate) -> float:
    return max((s[0] for s in est.segments), default=0.0)


def summarise(
    report: pd.DataFrame, n_samples: int, n_quarantined: int, cfg: AlignConfig
) -> dict[str, Any]:
    """Headline numbers for logs and the Prefect artifact."""
    sessions = report.drop_duplicates("session_id")
    est = report[(report["method"] == "estimate") & report["usable"]]
    # Residuals of streams whose clock was measured; starting-guess streams are listed
    # in the report but would only show the clock file's error here.
    measured = report["method"].isin(["estimate", "sync_markers"]) & report["usable"]
    res = report.loc[measured, "residual_offset_s"].abs().dropna()
    out: dict[str, Any] = {
        "mode": cfg.mode,
        "sessions": int(len(sessions)),
        "sessions_quarantined": int((sessions["session_status"] == "quarantined").sum()),
        "samples": int(n_samples),
        "quarantine_rows": int(n_quarantined),
        "streams_estimated": int(len(est)),
        "streams_fallback": int(report["fallback_reason"].notna().sum()),
        "median_confidence": float(est["confidence"].median()) if len(est) else math.nan,
    }
    if len(res):
        out["residual_abs_median_s"] = float(res.median())
        out["residual_abs_p95_s"] = float(res.quantile(0.95))
        out["residual_abs_max_s"] = float(res.max())
    for m in report["stream"].dropna().astype(str).unique():
        c = report.loc[report["stream"] == m, "completeness"].dropna()
        if len(c):
            out[f"completeness_{m}"] = round(float(c.mean()), 4)
    return out


def write_plots(
    store: ObjectStore, prefix: str, report: pd.DataFrame, example: StreamEstimate | None
) -> list[str]:
    """Offset histogram, one correlation curve and residuals as PNGs; returns their keys."""
    import matplotlib

    matplotlib.use("Agg")  # headless: plots are files, never windows
    import matplotlib.pyplot as plt

    keys = []

    def save(fig: Any, name: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        key = join_key(prefix, name)
        store.put_bytes(key, buf.getvalue())
        keys.append(key)

    usable = report[report["usable"] & ~report["method"].isin(["reference"])]
    fig, axes = plt.subplots(figsize=(6, 3.5))
    for stream, grp in usable.groupby("stream"):
        axes.hist(grp["offset_s"].dropna(), bins=30, alpha=0.6, label=str(stream))
    axes.set_xlabel("estimated offset at t_ref=0 (s)")
    axes.set_ylabel("streams")
    axes.set_title("Clock offsets to the reference")
    if len(usable):
        axes.legend()
    save(fig, "offset_histogram.png")

    fig, axes = plt.subplots(figsize=(6, 3.5))
    if example is not None and example.curve is not None and example.curve[0].size:
        lags, values = example.curve
        axes.plot(lags, values)
        axes.axvline(float(lags[int(np.argmax(values))]), color="r", ls="--")
        axes.set_title(f"{example.session_id} / {example.stream}: PSR {example.confidence:.1f}")
    else:
        axes.set_title("no correlation curve (no estimated stream)")
    axes.set_xlabel("lag: device - reference (s)")
    axes.set_ylabel("normalised correlation of cue edges")
    save(fig, "correlation_example.png")

    fig, axes = plt.subplots(figsize=(6, 3.5))
    res = report.dropna(subset=["residual_offset_s"])
    for stream, grp in res.groupby("stream"):
        axes.scatter(grp["residual_offset_s"], grp["residual_at_end_s"], s=12, label=str(stream))
    axes.set_xlabel("residual at session start (s)")
    axes.set_ylabel("residual at session end (s)")
    axes.set_title(
        "Offset error against the generator's truth" if len(res) else "no truth available"
    )
    if len(res):
        axes.legend()
    save(fig, "residuals.png")
    return keys


__all__ = ["REPORT_COLUMNS", "build_report", "read_truth", "summarise", "write_plots"]
