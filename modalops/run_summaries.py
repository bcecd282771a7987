"""Short summaries the Prefect UI shows: each flow run in one table, for the flow run's own
artifact (issue 24: the flow run's artifact section read "None"), and the stage tables that
must fit an artifact pane."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modalops.markdown import figure, percent, table


def training_summary_markdown(summary: Mapping[str, Any]) -> str:
    """The training run: dataset version and splits, gate verdict, each model's test figures,
    the registered version and the promotion decision (from `pipeline_summary`)."""
    splits = summary.get("splits") or {}
    verdict = "passed" if summary.get("validation_passed") else "FAILED"
    aliases = ", ".join(summary.get("aliases") or []) or "none"
    decision = "promoted to champion" if summary.get("promoted") else "not promoted"
    lines = [
        f"# Training run `{summary.get('run_key')}`",
        "",
        table(
            ["", "this run"],
            [
                ["dataset version", f"`{summary.get('dataset_version')}`"],
                ["samples per split", ", ".join(f"{k} {v}" for k, v in splits.items())],
                ["validation gate", f"{verdict} ({percent(summary.get('bad_fraction'), 2)} bad)"],
                ["registered", f"`{summary.get('model_name')}` v{summary.get('model_version')}"],
                ["aliases", aliases],
                ["decision", decision],
            ],
        ),
        "",
        "## Models on the test split",
        "",
        table(
            ["model", "streams", "macro F1", "accuracy", "ECE"],
            [
                [
                    m["model_id"],
                    m.get("streams", ""),
                    m.get("macro_f1"),
                    m.get("accuracy"),
                    m.get("ece"),
                ]  # fmt: skip
                for m in summary.get("models") or []
            ],
        ),
    ]
    reasons = summary.get("promotion_reasons") or []
    if reasons:
        lines += ["", "## Why", "", *(f"- {r}" for r in reasons)]
    return "\n".join(lines)


def batch_summary_markdown(
    summary: Mapping[str, Any], review: Mapping[str, Any], mlflow_run_id: str | None
) -> str:
    """The batch: model, windows and sessions, routing, review tasks, latency and cost."""
    reasons = summary.get("reasons") or {}
    rows = [
        ["model", f"`{summary.get('model')}`"],
        ["windows", f"{summary.get('windows')} from {summary.get('sessions_predicted')} sessions"],
        ["routed to review", f"{summary.get('routed')} ({percent(summary.get('routed_share'))})"],
        ["reasons", ", ".join(f"{k} {v}" for k, v in reasons.items()) or "none"],
        ["review tasks", f"{review.get('tasks', 0)} ({review.get('imported', 0)} new)"],
        ["review project", review.get("url") or f"import file `{review.get('import_json')}`"],
        ["latency per window", f"{figure(summary.get('latency_per_window_ms'))} ms"],
        ["windows/s end to end", summary.get("windows_per_s_end_to_end")],
        ["cost per 1k predictions", f"${figure(summary.get('cost_per_1k_usd'))}"],
        ["MLflow run", f"`{mlflow_run_id}`"],
    ]
    if summary.get("windows_with_truth"):
        rows.insert(4, ["error rate (known labels)", summary.get("error_rate")])
    return "# Batch inference\n\n" + table(["", "this run"], rows)


def feedback_summary_markdown(model_name: str, recorded: Mapping[str, Any]) -> str:
    """The feedback run: reviews pulled, corrections written, conflicts, version."""
    rows = [
        ["model", f"`{model_name}`"],
        ["reviews pulled", recorded.get("reviews", 0)],
        ["corrections written", recorded.get("written", 0)],
        ["conflicts (not applied)", recorded.get("conflicts", 0)],
        ["already recorded", recorded.get("already_recorded", 0)],
        ["corrections version", recorded.get("version") or "none"],
    ]
    return "# Feedback\n\n" + table(["", "this run"], rows)


VERDICT_CELL = 70  # characters of an observed/expected cell in the artifact (full in verdict.md)


def verdict_markdown(checks: Sequence[Any], width: int = VERDICT_CELL) -> str:
    """The validation verdict in two tables that fit the artifact pane: the checks that did not
    pass (with their severity), then the passed ones (check, observed, expected). Long cells
    are cut to `width`; the full five-column table stays in `validation/verdict.md`."""
    failed = [c for c in checks if not c.passed]
    passed = [c for c in checks if c.passed]
    parts = [f"## Not passed ({len(failed)})", ""]
    parts.append(
        table(
            ["check", "result", "observed", "expected"],
            [
                [c.check, "FAIL" if c.severity == "fail" else "warn", c.observed, c.expected]
                for c in failed
            ],  # fmt: skip
            width,
        )
        if failed
        else "_none_"
    )
    parts += ["", f"## Passed ({len(passed)})", ""]
    parts.append(
        table(
            ["check", "observed", "expected"],
            [[c.check, c.observed, c.expected] for c in passed],
            width,
        )
        if passed
        else "_none_"
    )
    return "\n".join(parts)
