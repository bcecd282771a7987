"""The evaluation report as data: what was measured, and its strict-JSON (de)serialisation.

A leaf module: the evaluation builds an EvaluationReport, the HTML rendering reads one, and
neither imports the other (issue 9 broke the evaluation <-> report cycle here).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SKEW_COLUMNS = ["stream", "delta_s", "model", "macro_f1", "ece", "coverage", "n"]
STREAM_LOSS_COLUMNS = ["stream", "mode", "model", "macro_f1", "ece", "coverage", "n"]


@dataclass
class StressResult:
    """The fused model (and the baselines) under stress: streams skewed in time, lost or noised.

    `skew`: one row per stream x signed shift (s) x model ("fused" or the stream's baseline);
    `stream_loss`: one row per stream x mode ("drop", "noise") x model ("fused", or
    "best_single": the best single-stream baseline that does not use the lost stream);
    `skipped`: {"stream", "test", "reason"} for every stream a test could not be run on.
    ECE is on the uncalibrated probabilities (as in the models table); coverage is the share of
    windows the fused model answers at the report's abstention threshold (1.0 for baselines)."""

    skew: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKEW_COLUMNS))
    stream_loss: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=STREAM_LOSS_COLUMNS)
    )
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0  # wall time the skew re-cuts and scoring took

    def to_dict(self) -> dict[str, Any]:
        return {
            "skew": json.loads(self.skew.to_json(orient="records")),
            "stream_loss": json.loads(self.stream_loss.to_json(orient="records")),
            "skipped": list(self.skipped),
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any] | None) -> StressResult:
        doc = doc or {}
        return cls(
            skew=pd.DataFrame(doc.get("skew") or [], columns=SKEW_COLUMNS),
            stream_loss=pd.DataFrame(doc.get("stream_loss") or [], columns=STREAM_LOSS_COLUMNS),
            skipped=list(doc.get("skipped") or []),
            seconds=float(doc.get("seconds") or 0.0),
        )


@dataclass
class EvaluationReport:
    """Everything the evaluation measured; `plots` hold PNG bytes and are not part of the JSON."""

    headline: dict[str, Any]
    models: pd.DataFrame
    slices: pd.DataFrame
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    confusion: dict[str, list[list[int]]] = field(default_factory=dict)
    robustness: pd.DataFrame = field(default_factory=pd.DataFrame)
    calibration: dict[str, Any] = field(default_factory=dict)
    reliability: pd.DataFrame = field(default_factory=pd.DataFrame)
    abstention: dict[str, Any] = field(default_factory=dict)
    coverage_risk: pd.DataFrame = field(default_factory=pd.DataFrame)
    gate: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> store key
    labels: list[str] = field(default_factory=list)  # class names (the spec's), in index order
    stress: StressResult = field(default_factory=StressResult)  # skew and stream-loss curves
    plots: dict[str, bytes] = field(default_factory=dict, repr=False)

    _TABLES = ("models", "slices", "per_class", "robustness", "reliability", "coverage_risk")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "headline": self.headline,
            "confusion": self.confusion,
            "calibration": self.calibration,
            "abstention": self.abstention,
            "gate": self.gate,
            "artifacts": self.artifacts,
            "labels": list(self.labels),
            "stress": self.stress.to_dict(),
        }
        for name in self._TABLES:
            out[name] = json.loads(getattr(self, name).to_json(orient="records"))
        return _jsonable(out)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> EvaluationReport:
        doc = json.loads(text)
        tables = {name: pd.DataFrame(doc.get(name, [])) for name in cls._TABLES}
        return cls(
            headline=doc["headline"],
            confusion=doc.get("confusion", {}),
            calibration=doc.get("calibration", {}),
            abstention=doc.get("abstention", {}),
            gate=doc.get("gate", {}),
            artifacts=doc.get("artifacts", {}),
            labels=list(doc.get("labels", [])),
            stress=StressResult.from_dict(doc.get("stress")),
            **tables,
        )

    def flagged_slices(self) -> list[str]:
        """Names ("column=value") of the slices flagged as worse than overall."""
        if self.slices.empty:
            return []
        rows = self.slices[self.slices["flagged"].astype(bool)]
        return [f"{c}={v}" for c, v in zip(rows["column"], rows["value"], strict=True)]

    def headline_markdown(self) -> str:
        """A markdown headline table (fused vs unimodal with CIs, then the key findings)."""
        h = self.headline
        lines = [
            "| model | macro-F1 [95% CI] | accuracy | ECE | p50 / p95 ms | params | $ per 1k |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.models.to_dict("records"):
            lines.append(
                f"| {r['model_id']} | {_f(r['macro_f1'])} [{_f(r['macro_f1_lo'])}, "
                f"{_f(r['macro_f1_hi'])}] | {_f(r['accuracy'])} | {_f(r['ece'])} | "
                f"{_f(r['latency_p50_ms'], 2)} / {_f(r['latency_p95_ms'], 2)} | "
                f"{int(r['n_params']):,} | {_f(r['cost_per_1k_usd'], 6)} |"
            )
        lines += [
            "",
            f"- **Fusion lift** over best unimodal ({h.get('best_unimodal')}): "
            f"{_f(h.get('lift'), 3, sign=True)} macro-F1 "
            f"[{_f(h.get('lift_lo'), 3, sign=True)}, {_f(h.get('lift_hi'), 3, sign=True)}]",
            f"- **Worst slice**: {h.get('worst_slice')} macro-F1 {_f(h.get('worst_slice_macro_f1'))}"
            f" (n={h.get('worst_slice_n')}); flagged: {', '.join(self.flagged_slices()) or 'none'}",
            f"- **Calibration**: ECE {_f(h.get('ece_before'))} → {_f(h.get('ece_after'))} "
            f"(temperature {_f(h.get('temperature'), 2)}, fitted on validation)",
            f"- **Abstention**: threshold {_f(h.get('abstention_threshold'))} "
            f"({self.abstention.get('target')} target {self.abstention.get('value')}): "
            f"test coverage {_f(h.get('coverage'))}, selective accuracy "
            f"{_f(h.get('selective_accuracy'))}",
            f"- Test samples: {h.get('n_test')} from {h.get('n_test_sessions')} sessions",
        ]
        if self.gate:
            lines.append(
                f"- **Promotion**: {self.gate.get('decision')} — "
                + "; ".join(self.gate.get("reasons", []))
            )
        return "\n".join(lines)


def _f(x: Any, nd: int = 3, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:+.{nd}f}" if sign else f"{x:.{nd}f}"


def _jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN/inf become None so the file is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


jsonable = _jsonable  # for other reports written as strict JSON

__all__ = ["EvaluationReport", "StressResult", "jsonable"]
