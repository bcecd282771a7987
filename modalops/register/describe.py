"""The words a registry consumer reads first: a registered version's and model's descriptions.

MLflow shows a version's description (markdown) at the top of its page; an empty one (issue 24)
left a consumer to dig through tags and runs for what the version is and whether it serves.
Plain functions of what registration already holds, so a test checks the text without MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# the fused model's own figures among the evaluation headline: what the logged model carries
MODEL_HEADLINE = (
    "fused_macro_f1", "fused_macro_f1_lo", "fused_macro_f1_hi", "fused_accuracy", "ece_before",
    "ece_after", "lift", "lift_lo", "lift_hi", "worst_slice_macro_f1", "coverage",
    "selective_accuracy", "n_test",
)  # fmt: skip


@dataclass(frozen=True)
class ModelFacts:
    """What a registered version is: its streams, classes and the dataset version it learnt."""

    model_name: str
    streams: Sequence[str]
    classes: Sequence[str]
    dataset_name: str
    dataset_version: str | None = None


def _num(x: Any, nd: int = 3, sign: bool = False) -> str:
    if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(float(x)):
        return "n/a"
    return f"{float(x):+.{nd}f}" if sign else f"{float(x):.{nd}f}"


def _listed(items: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(f"`{i}`" for i in list(items)[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "")


def what_it_is(facts: ModelFacts) -> str:
    """One paragraph: a fused model over which streams, which classes, trained on what."""
    dataset = facts.dataset_name + (f"@{facts.dataset_version}" if facts.dataset_version else "")
    return (
        f"Fused multimodal classifier over {len(facts.streams)} streams "
        f"({_listed(facts.streams)}), {len(facts.classes)} classes ({_listed(facts.classes)}), "
        f"trained on dataset `{dataset}`."
    )


def metrics_table(headline: Mapping[str, Any]) -> list[str]:
    """The test figures as a markdown table (rows without a value left out)."""
    h = headline
    n = h.get("n_test")
    where = f"{n} test windows" + (
        f" from {h['n_test_sessions']} sessions" if h.get("n_test_sessions") else ""
    )
    rows = [
        ("macro-F1 [95% CI]", h.get("fused_macro_f1"),
         f"{_num(h.get('fused_macro_f1'))} [{_num(h.get('fused_macro_f1_lo'))}, "
         f"{_num(h.get('fused_macro_f1_hi'))}]"),
        ("accuracy", h.get("fused_accuracy"), _num(h.get("fused_accuracy"))),
        ("ECE, calibrated (before)", h.get("ece_after"),
         f"{_num(h.get('ece_after'))} ({_num(h.get('ece_before'))})"),
        (f"lift over best unimodal ({h.get('best_unimodal')})", h.get("lift"),
         f"{_num(h.get('lift'), sign=True)} [{_num(h.get('lift_lo'), sign=True)}, "
         f"{_num(h.get('lift_hi'), sign=True)}]"),
        (f"worst slice ({h.get('worst_slice')})", h.get("worst_slice_macro_f1"),
         _num(h.get("worst_slice_macro_f1"))),
        ("coverage at the abstention threshold", h.get("coverage"), _num(h.get("coverage"))),
    ]  # fmt: skip
    shown = [(name, text) for name, value, text in rows if _num(value) != "n/a"]
    if not shown:
        return []
    return [
        f"| {where if n else 'test'} | |",
        "|---|---|",
        *(f"| {name} | {text} |" for name, text in shown),
    ]


def gate_lines(decision: Any) -> list[str]:
    """The gate's decision (a PromotionDecision, or None) and each check with its reason."""
    if decision is None:
        return ["**Promotion gate**: no decision recorded."]
    against = (
        f" against champion v{decision.previous_champion}" if decision.previous_champion else ""
    )
    lines = [f"**Promotion gate**: {decision.decision}{against} ({decision.decided_at})."]
    lines += [f"- {r}" for r in decision.reasons]
    return lines


def version_description(
    facts: ModelFacts, headline: Mapping[str, Any], decision: Any, pipeline_run: str | None
) -> str:
    """A registered version's description: what it is, its test figures, the gate's decision."""
    parts = [what_it_is(facts)]
    if pipeline_run:
        parts[0] += f" Pipeline run `{pipeline_run}`."
    table = metrics_table(headline)
    if table:
        parts.append("\n".join(table))
    parts.append("\n".join(gate_lines(decision)))
    return "\n\n".join(parts)


def model_description(facts: ModelFacts) -> str:
    """The registered model's description: what its versions are and which alias serves."""
    return "\n\n".join(
        [
            what_it_is(facts).replace("trained on dataset", "latest version trained on dataset"),
            f"Alias `champion` is the version that serves "
            f"(`mlflow.pyfunc.load_model('models:/{facts.model_name}@champion')`); `challenger` "
            "is the latest registered. Each version's description gives its test figures and "
            "the promotion gate's decision with its reasons.",
        ]
    )
