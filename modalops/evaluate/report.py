"""The evaluation report as one self-contained HTML page with embedded matplotlib PNGs."""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from modalops.train import FUSED_ID

if TYPE_CHECKING:
    from modalops.evaluate.result import EvaluationReport


def _figure(width: float = 5.0, height: float = 4.0):
    # Figure + Agg canvas directly: no pyplot global state, no GUI backend probing.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def plot_confusion(cm: list[list[int]], title: str, labels: list[str] | None = None) -> bytes:
    arr = np.asarray(cm)
    names = list(labels) if labels else [str(i) for i in range(arr.shape[0])]
    # a dozen classes need a bigger grid than four
    side = max(4.0, 0.45 * len(names) + 2.0)
    fig = _figure(side + 0.6, side)
    axes = fig.add_subplot()
    axes.imshow(arr, cmap="Blues")
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    top = arr.max() if arr.size else 0
    for (i, j), v in np.ndenumerate(arr):
        axes.text(j, i, str(v), ha="center", va="center", color="white" if v > top / 2 else "black")
    return _png(fig)


def plot_reliability(reliability: pd.DataFrame, ece_before: float, ece_after: float) -> bytes:
    fig = _figure()
    axes = fig.add_subplot()
    axes.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    for stage, style in (("before", "o-"), ("after", "s-")):
        part = reliability[(reliability["stage"] == stage) & (reliability["n"] > 0)]
        ece = ece_before if stage == "before" else ece_after
        axes.plot(part["confidence"], part["accuracy"], style, label=f"{stage} (ECE {ece:.3f})")
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_title("Reliability (fused, test)")
    axes.legend(loc="upper left")
    return _png(fig)


def plot_slices(slices: pd.DataFrame, overall: float) -> bytes:
    fig = _figure(6.0, max(2.5, 0.35 * len(slices) + 1.0))
    axes = fig.add_subplot()
    names = [f"{c}={v}" for c, v in zip(slices["column"], slices["value"], strict=True)]
    f1 = slices["macro_f1"].to_numpy(dtype=float)
    lo = np.nan_to_num(f1 - slices["macro_f1_lo"].to_numpy(dtype=float), nan=0.0).clip(min=0)
    hi = np.nan_to_num(slices["macro_f1_hi"].to_numpy(dtype=float) - f1, nan=0.0).clip(min=0)
    colors = ["tab:red" if f else "tab:blue" for f in slices["flagged"]]
    axes.barh(range(len(names)), f1, xerr=[lo, hi], color=colors)
    axes.axvline(overall, color="k", ls="--", lw=1, label=f"overall {overall:.3f}")
    axes.set_yticks(range(len(names)), names)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("macro-F1 (95% CI); red = flagged")
    axes.set_title("Slices (fused, test)")
    axes.legend(loc="lower right")
    return _png(fig)


def plot_coverage_risk(curve: pd.DataFrame, coverage: float, risk: float) -> bytes:
    fig = _figure()
    axes = fig.add_subplot()
    axes.plot(curve["coverage"], curve["risk"], "-", label="test")
    if np.isfinite(coverage) and np.isfinite(risk):
        axes.plot([coverage], [risk], "ro", label="chosen threshold")
    axes.set_xlabel("coverage")
    axes.set_ylabel("selective risk (error among answered)")
    axes.set_xlim(0, 1)
    axes.set_title("Coverage-risk (fused, calibrated)")
    axes.legend()
    return _png(fig)


def plot_models(models: pd.DataFrame, robustness: pd.DataFrame) -> bytes:
    fig = _figure(6.0, 3.8)
    axes = fig.add_subplot()
    names = list(models["model_id"]) + [f"fused −{m}" for m in robustness.get("removed", [])]
    vals = list(models["macro_f1"]) + list(robustness.get("macro_f1", []))
    lo = list(models["macro_f1"] - models["macro_f1_lo"]) + [0.0] * len(robustness)
    hi = list(models["macro_f1_hi"] - models["macro_f1"]) + [0.0] * len(robustness)
    colors = ["tab:green" if n == FUSED_ID else "tab:gray" for n in models["model_id"]]
    colors += ["tab:olive"] * len(robustness)
    err = np.nan_to_num(np.array([lo, hi], dtype=float), nan=0.0).clip(min=0)
    axes.bar(range(len(names)), vals, yerr=err, color=colors)
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axes.set_ylim(0, 1)
    axes.set_ylabel("test macro-F1 (95% CI)")
    axes.set_title("Single-stream vs fused, and fused with a stream removed")
    return _png(fig)


def make_plots(report: EvaluationReport) -> dict[str, bytes]:
    """PNG bytes per plot name."""
    fused = report.headline.get("fused_model", "fused")
    plots = {
        "confusion": plot_confusion(
            report.confusion[fused], f"Confusion ({fused}, test)", report.labels
        ),
        "reliability": plot_reliability(
            report.reliability,
            report.calibration.get("ece_before", float("nan")),
            report.calibration.get("ece_after", float("nan")),
        ),
        "coverage_risk": plot_coverage_risk(
            report.coverage_risk,
            report.abstention.get("test_coverage", float("nan")),
            report.abstention.get("test_risk", float("nan")),
        ),
        "models": plot_models(report.models, report.robustness),
    }
    if not report.slices.empty:
        plots["slices"] = plot_slices(report.slices, float(report.headline["fused_macro_f1"]))
    from modalops.evaluate.stress import stress_plots

    plots.update(stress_plots(report.stress, float(report.headline["fused_macro_f1"])))
    return plots


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda x: f"{x:.3f}", border=0, na_rep="n/a")


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _markdown_lines_to_html(md: str) -> str:
    items = [line[2:] for line in md.splitlines() if line.startswith("- ")]
    return "<ul>" + "".join(f"<li>{html.escape(i.replace('**', ''))}</li>" for i in items) + "</ul>"


def _stress_sections(report: EvaluationReport, plots: dict[str, bytes]) -> list[str]:
    """Skew curves and stream loss (evaluate.stress), with what was skipped and why."""
    st = report.stress
    skipped = "".join(
        f"<li>{html.escape(str(r.get('stream')))} ({html.escape(str(r.get('test')))}): "
        f"{html.escape(str(r.get('reason')))}</li>"
        for r in st.skipped
    )
    return [
        "<h2>Stream loss: each stream dropped or replaced by noise</h2>",
        _table(st.stream_loss) if not st.stream_loss.empty else "<p>not evaluated</p>",
        _img(plots.get("stream_reliance"), "stream reliance"),
        "<h2>Skew: each stream's clock shifted</h2>",
        *(
            _img(plots.get(f"skew_{v}"), f"{v} against skew")
            for v in ("macro_f1", "ece", "coverage")
        ),
        _table(st.skew) if not st.skew.empty else "<p>not evaluated</p>",
        f"<h3>Skipped</h3><ul>{skipped}</ul>" if skipped else "",
    ]


def render_html(report: EvaluationReport) -> str:
    """One self-contained HTML page (plots embedded as base64 PNGs)."""
    plots = report.plots or make_plots(report)
    h = report.headline
    gate = ""
    if report.gate:
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in report.gate.get("reasons", []))
        gate = (
            f"<h2>Promotion gate</h2><p>Decision: <b>{html.escape(str(report.gate.get('decision')))}"
            f"</b></p><ul>{reasons}</ul>"
        )
    title = f"modalops evaluation — dataset {html.escape(str(h.get('dataset_version', '?')))}"
    sections = [
        f"<h1>{title}</h1>",
        _markdown_lines_to_html(report.headline_markdown()),
        "<h2>Models (test split)</h2>",
        _table(report.models),
        _img(plots.get("models"), "single-stream vs fused"),
        "<h2>Missing-stream robustness (fused)</h2>",
        _table(report.robustness) if not report.robustness.empty else "<p>not evaluated</p>",
        "<h2>Per class</h2>",
        _table(report.per_class),
        _img(plots.get("confusion"), "confusion matrix"),
        "<h2>Slices</h2>",
        _table(report.slices) if not report.slices.empty else "<p>no slice columns found</p>",
        _img(plots.get("slices"), "slices"),
        "<h2>Calibration</h2>",
        _table(pd.DataFrame([report.calibration])),
        _img(plots.get("reliability"), "reliability diagram"),
        "<h2>Abstention</h2>",
        _table(pd.DataFrame([report.abstention])),
        _img(plots.get("coverage_risk"), "coverage-risk curve"),
        *_stress_sections(report, plots),
        gate,
    ]
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "img{max-width:560px;display:block;margin:.5em 0}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{style}</style></head><body>"
        + "\n".join(s for s in sections if s)
        + "</body></html>"
    )
