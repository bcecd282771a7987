"""A batch's summary as markdown and as an MLflow run linked to the model version it used."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping
from typing import Any

from modalops.evaluate.result import jsonable
from modalops.infer.champion import ModelRef

METRICS = (
    "windows", "routed", "routed_share", "abstained_share", "windows_per_s_model",
    "windows_per_s_end_to_end", "latency_per_window_ms", "batch_latency_p50_ms",
    "batch_latency_p95_ms", "cost_per_1k_usd", "error_rate", "error_rate_routed",
    "error_rate_accepted", "errors_caught_share", "windows_with_truth", "sessions_predicted",
    "quarantine_rows",
)  # fmt: skip


def _f(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def summary_markdown(summary: Mapping[str, Any], keys: Mapping[str, str], store_uri: str) -> str:
    """The batch in a few lines: routing, why, latency and cost, and where the outputs are."""
    s = summary
    selection = [f"- {s['selection']}"] if s.get("selection") else []
    lines = [
        f"# Batch inference with `{s.get('model')}`",
        "",
        f"- windows: {s.get('windows')} from {s.get('sessions_predicted')} sessions "
        f"({s.get('sessions_requested')} requested); quarantine rows {s.get('quarantine_rows')}",
        *selection,
    ]
    if s.get("windows"):  # with none predicted there is no share, latency or cost (nan%)
        lines += [
            f"- routed to review: {s.get('routed')} ({100 * (s.get('routed_share') or 0):.1f}%); "
            f"abstained {100 * (s.get('abstained_share') or 0):.1f}% "
            f"(threshold {_f(s.get('threshold'))})",
            "- reasons: "
            + (", ".join(f"{k} {v}" for k, v in (s.get("reasons") or {}).items()) or "none"),
            f"- consumer-side latency {_f(s.get('latency_per_window_ms'), 2)} ms per window; "
            f"{_f(s.get('windows_per_s_model'), 1)} windows/s in the model, "
            f"{_f(s.get('windows_per_s_end_to_end'), 1)} end to end",
            f"- cost per 1k predictions: ${_f(s.get('cost_per_1k_usd'), 6)} "
            f"at ${_f(s.get('hourly_price_usd'), 2)}/h",
        ]
    elif not selection:
        lines.append("- no window was predicted")
    by_reason = s.get("by_reason") or {}
    if by_reason:
        lines += ["", "| reason | routed | share | error rate (routed, with a label) | accepted |",
                  "|---|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| {kind} | {r['routed']} | {100 * r['share']:.1f}% | "
            f"{_f(r['error_rate'])} of {r['windows_with_truth']} | {_f(r['error_rate_accepted'])} |"
            for kind, r in by_reason.items()
        ]
        lines.append("")
    if s.get("windows_with_truth"):
        lines.append(
            f"- on {s['windows_with_truth']} windows with a known label: error rate "
            f"{_f(s.get('error_rate'))}; routed {_f(s.get('error_rate_routed'))} vs accepted "
            f"{_f(s.get('error_rate_accepted'))}; {_f(s.get('errors_caught_share'))} of errors "
            "routed to review"
        )
    root = f"{store_uri.rstrip('/')}/" if store_uri else ""
    lines += ["", "Outputs:", *(f"- {k}: `{root}{v}`" for k, v in keys.items())]
    return "\n".join(lines)


def log_batch_run(
    tracking_uri: str,
    experiment: str,
    served: ModelRef,
    summary: Mapping[str, Any],
    markdown: str,
    tags: Mapping[str, str | None],
    artifact_location: str | None = None,
) -> str:
    """An MLflow run for the batch, linked to the model version (as its model input, where MLflow
    records one, and by tags), with the summary as metrics. Returns the run id."""
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelInput, Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        experiment_id = exp.experiment_id
    else:
        try:
            experiment_id = client.create_experiment(
                experiment, artifact_location=artifact_location
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            # created meanwhile by another run
            experiment_id = client.get_experiment_by_name(experiment).experiment_id
    all_tags = {
        "modalops.stage": "batch_inference",
        "modalops.model_name": served.name,
        "modalops.model_version": served.version,
        "modalops.model_run_id": served.run_id,
        "mlflow.note.content": markdown,
        **{k: str(v) for k, v in tags.items() if v is not None},
    }
    now = int(time.time() * 1000)
    started = batch_start_ms(summary, now)
    run = client.create_run(
        experiment_id,
        run_name=batch_run_name(served.version, started),
        tags=all_tags,
        start_time=started,
    )
    rid = run.info.run_id
    metrics = [
        Metric(f"inference.{k}", float(summary[k]), now, 0)
        for k in METRICS
        if isinstance(summary.get(k), (int, float)) and math.isfinite(float(summary[k]))
    ]
    params = [
        Param("model_uri", f"models:/{served.name}/{served.version}"),
        Param("threshold", str(served.threshold)),
        Param("flagged_slices", ", ".join(served.flagged_slices) or "none"),
    ]
    client.log_batch(rid, metrics=metrics, params=params, tags=[RunTag("modalops.routed",
                     str(summary.get("routed")))])  # fmt: skip
    if served.model_id:
        # an older tracking server has no model inputs: the tags above still link the run
        with contextlib.suppress(MlflowException):
            client.log_inputs(rid, models=[LoggedModelInput(served.model_id)])
    client.log_text(rid, markdown, "inference/summary.md")
    client.log_dict(rid, jsonable(dict(summary)), "inference/summary.json")
    client.set_model_version_tag(served.name, served.version, "last_batch_run", rid)
    # ends now, after the batch and its review hand-off: the run spans the batch as it ran
    client.set_terminated(rid, "FINISHED", end_time=int(time.time() * 1000))
    return rid


def batch_start_ms(summary: Mapping[str, Any], now_ms: int) -> int:
    """When the batch started (epoch ms): its measured `started_at_ms`, else `now_ms` less its
    measured `wall_seconds`. A run created when the batch is logged lasted ~40 ms in MLflow's
    list while the batch took seconds (issue 24)."""
    started = summary.get("started_at_ms")
    if isinstance(started, (int, float)) and 0 < started <= now_ms:
        return int(started)
    wall = summary.get("wall_seconds")
    if isinstance(wall, (int, float)) and math.isfinite(wall) and wall > 0:
        return now_ms - int(wall * 1000)
    return now_ms


def batch_run_name(version: str | int, started_ms: int) -> str:
    """`batch v3 12-07 03:00` (UTC): short enough for MLflow's runs list."""
    stamp = time.strftime("%m-%d %H:%M", time.gmtime(started_ms / 1000))
    return f"batch v{version} {stamp}"
