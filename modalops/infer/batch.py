"""Batch inference: new recordings → the training pipeline's ingest, align and windowing → the
registered model → structured predictions, routed to review or accepted by the verification rules.

The recordings go through `ingest_recordings` and `align_dataset`, the functions training uses,
with the alignment settings of the model's dataset version, so windows are cut as in training.
Labels are not needed; where a session has them (a held-out session, say) they are carried as
`true_label`, so verification can be measured: the error rate of routed against accepted windows.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from modalops.align import align_dataset
from modalops.config.pipeline import PipelineConfig
from modalops.dataset import columns, layout
from modalops.dataset.corrections import read_corrections
from modalops.dataset.spec import DatasetSpec
from modalops.evaluate.result import jsonable
from modalops.infer.champion import ModelRef, ServedModel, training_align_config
from modalops.infer.verify import REVIEW, route_windows
from modalops.ingest import ingest_recordings
from modalops.runs import put_frame
from modalops.store import ObjectStore, join_key

PREDICTION_BASE = (
    "session_id", "window_index", "t_start", "t_end", "label", "probability", "abstained",
    "abstain_reason", "input_issues",
)  # fmt: skip
# what the served model says about its input (modalops.serving.pyfunc.outputs_frame); a model
# registered before it did is read as having said nothing
INPUT_REPORT_COLUMNS = ("abstain_reason", "input_issues")


OUTPUTS = {
    "predictions": ".parquet",
    "review_items": ".parquet",
    "quarantine": ".parquet",
    "summary": ".json",
}


def prediction_columns(spec: DatasetSpec) -> list[str]:
    """Columns of predictions.parquet, in order (docs/inference.md)."""
    return [
        *PREDICTION_BASE,
        *(f"prob_{c}" for c in spec.labels.classes),
        "route",
        "reasons",
        "true_label",
        *(columns.presence_column(s) for s in spec.stream_names),
        *spec.meta_columns,
        "model_name",
        "model_version",
        "spec_digest",
        "run_key",
        "predicted_at",
    ]


@dataclass
class BatchResult:
    """What one batch wrote and measured."""

    predictions: pd.DataFrame  # prediction_columns(spec)
    review_items: pd.DataFrame  # routed rows plus their x__<stream> payloads
    quarantine: pd.DataFrame
    summary: dict[str, Any]
    model: ModelRef
    keys: dict[str, str] = field(default_factory=dict)  # name -> store key


def select_sessions(
    raw: ObjectStore, spec: DatasetSpec, selector: str | list[str], store: ObjectStore,
    dataset_version: str | None,
) -> list[str]:  # fmt: skip
    """Session ids the batch covers (see InferenceConfig.sessions)."""
    if isinstance(selector, list):
        return [str(s) for s in selector]
    table = layout.read_sessions(raw, spec)
    ids = table[spec.sessions.id_column].astype(str).tolist()
    if selector == "all":
        return ids
    if selector == "unlabelled":
        reviewed = set(read_corrections(raw, spec)["session_id"].dropna().astype(str))
        if spec.labels.source == "session":
            values = table[spec.labels.column].astype("string").fillna("")
            unlabelled = {i for i, v in zip(ids, values, strict=True) if not v}
        else:
            unlabelled = {
                i for i in ids if not raw.exists(layout.session_key(spec, i, spec.labels.path))
            }
        return [i for i in ids if i in unlabelled - reviewed]
    from modalops.shard import load_manifest

    if not dataset_version:
        raise ValueError(
            f"sessions: {selector!r} needs the model's dataset version, and the model has none "
            "recorded (tag dataset_version)"
        )
    manifest = load_manifest(store, dataset_version)
    if selector == "champion_test":
        return list(manifest.splits["test"].sessions)
    seen = {s for split in manifest.splits.values() for s in split.sessions}
    return [i for i in ids if i not in seen]


def selection_note(
    raw: ObjectStore, spec: DatasetSpec, selector: str | list[str], selected: list[str],
    dataset_version: str | None,
) -> str:  # fmt: skip
    """What `inference.sessions` picked, in words; for an empty pick, why, and what to set
    instead (the demo's sessions are all in the champion's dataset version, so `new` finds
    none: a count of 0 windows must not read as a batch that ran on nothing by mistake)."""
    asked = selector if isinstance(selector, str) else "a list of ids"
    listed = isinstance(selector, list)
    total = len(selector) if listed else len(layout.read_sessions(raw, spec))
    text = f"inference.sessions={asked!r} selected {len(selected)} of {total} sessions"
    if selected:
        return text
    why = {
        "new": f"every session is in the model's dataset version {dataset_version}",
        "unlabelled": "every session has a label or a completed review",
        "champion_test": f"the dataset version {dataset_version} has no test sessions",
        "all": "the sessions table is empty",
    }.get(asked, "the list is empty")
    return (
        f"{text}: {why}. Choose others with --set inference.sessions=all, unlabelled, "
        "champion_test (the model's held-out test sessions) or [id, ...]"
    )


def _samples(row: dict[str, Any], spec: DatasetSpec) -> dict[str, Any]:
    return {
        "streams": {
            s: row[columns.payload_column(s)] if row[columns.presence_column(s)] else None
            for s in spec.stream_names
        }
    }


def predict_parts(
    store: ObjectStore, part_keys: list[str], served: ServedModel, batch_size: int
) -> tuple[pd.DataFrame, pd.DataFrame, list[float]]:
    """(aligned rows, model outputs, seconds per model call) for every aligned part."""
    from modalops.serving.pyfunc import to_input_frame

    spec = served.spec
    rows, outputs, seconds = [], [], []
    for key in part_keys:
        part = pd.read_parquet(io.BytesIO(store.get_bytes(key)))
        records = part.to_dict("records")
        for lo in range(0, len(records), batch_size):
            chunk = records[lo : lo + batch_size]
            frame = to_input_frame([_samples(r, spec) for r in chunk], spec)
            t0 = time.perf_counter()
            out = served.model.predict(frame)
            seconds.append(time.perf_counter() - t0)
            outputs.append(out.reset_index(drop=True))
        rows.append(part)
    if not rows:
        return pd.DataFrame(), pd.DataFrame(), seconds
    return pd.concat(rows, ignore_index=True), pd.concat(outputs, ignore_index=True), seconds


def _error_rates(pred: pd.DataFrame) -> dict[str, Any]:
    known = pred[pred["true_label"].notna()]
    if known.empty:
        return {"windows_with_truth": 0}
    wrong = known["label"].astype(str) != known["true_label"].astype(str)
    routed = known["route"] == REVIEW

    def rate(mask: pd.Series) -> float:
        return float(wrong[mask].mean()) if mask.any() else math.nan

    return {
        "windows_with_truth": int(len(known)),
        "error_rate": float(wrong.mean()),
        "error_rate_routed": rate(routed),
        "error_rate_accepted": rate(~routed),
        "errors_caught_share": float((wrong & routed).sum() / wrong.sum())
        if wrong.any()
        else math.nan,
    }


def run_batch(
    raw: ObjectStore,
    store: ObjectStore,
    spec: DatasetSpec,
    cfg: PipelineConfig,
    served: ServedModel,
    prefix: str,
    run_key: str = "",
) -> BatchResult:
    """Predict every window of the selected sessions and route each to review or acceptance.

    `spec` is the batch's dataset spec: it must be one the model can decode (SpecError names
    every difference otherwise). Writes under `<prefix>/inference/` in `store`.
    """
    icfg = cfg.inference
    served.spec.check_compatible(spec, what=f"model {served.label}")
    t_start, started_at_ms = time.perf_counter(), int(time.time() * 1000)
    sessions = select_sessions(raw, spec, icfg.sessions, store, served.dataset_version)
    selection = selection_note(raw, spec, icfg.sessions, sessions, served.dataset_version)
    align_cfg, align_from = training_align_config(
        store, served.dataset_version, cfg.align, served.window_s
    )
    out_prefix = join_key(prefix, "inference")
    ingested = ingest_recordings(raw, spec, cfg.ingest, sessions=sessions, labels_required=False)
    aligned = align_dataset(
        raw, spec, ingested.catalog, align_cfg, out=store, prefix=out_prefix,
        quarantine=ingested.quarantine, labelled=False,
    )  # fmt: skip
    rows, outputs, seconds = predict_parts(store, aligned.part_keys, served, icfg.batch_size)
    quarantine = pd.concat([ingested.quarantine, aligned.quarantine], ignore_index=True)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if rows.empty:
        pred = pd.DataFrame(columns=prediction_columns(served.spec))
        items = pd.DataFrame()
    else:
        base = rows[["session_id", "window_index", "t_start", "t_end"]].reset_index(drop=True)
        pred = pd.concat([base, outputs], axis=1)
        for col in INPUT_REPORT_COLUMNS:
            if col not in pred.columns:
                pred[col] = ""
        pred["true_label"] = rows["label"].astype("string")
        for s in spec.stream_names:
            pred[columns.presence_column(s)] = rows[columns.presence_column(s)].astype(bool)
        for c in spec.meta_columns:
            pred[c] = rows[c].astype("string")
        pred = route_windows(
            pred, served.spec, icfg.verification, served.threshold, served.flagged_slices
        )
        pred["model_name"], pred["model_version"] = served.name, served.version
        pred["spec_digest"], pred["run_key"], pred["predicted_at"] = spec.digest(), run_key, now
        pred = pred[prediction_columns(served.spec)]
        routed = (pred["route"] == REVIEW).to_numpy()
        payloads = rows.loc[routed, [columns.payload_column(s) for s in spec.stream_names]]
        items = pd.concat(
            [pred[routed].reset_index(drop=True), payloads.reset_index(drop=True)], axis=1
        )
    summary = summarise(pred, seconds, time.perf_counter() - t_start, cfg, served)
    summary.update(
        started_at_ms=started_at_ms,  # the batch's MLflow run starts here, not when it is logged
        sessions_requested=len(sessions),
        selection=selection,
        sessions_predicted=int(pred["session_id"].nunique()) if len(pred) else 0,
        quarantine_rows=int(len(quarantine)),
        align_settings_from=align_from,
        streams_estimated=aligned.summary.get("streams_estimated"),
        streams_fallback=aligned.summary.get("streams_fallback"),
        median_confidence=aligned.summary.get("median_confidence"),
    )
    keys = {name: join_key(out_prefix, name + ext) for name, ext in OUTPUTS.items()}
    put_frame(store, keys["predictions"], pred)
    put_frame(store, keys["review_items"], items)
    put_frame(store, keys["quarantine"], quarantine)
    store.put_text(keys["summary"], json.dumps(jsonable(summary), indent=2))
    for key in aligned.part_keys:  # the windows' payloads now live in review_items only
        store.delete(key)
    return BatchResult(pred, items, quarantine, summary, served.ref(), keys)


def summarise(
    pred: pd.DataFrame, seconds: list[float], wall_s: float, cfg: PipelineConfig,
    served: ServedModel,
) -> dict[str, Any]:  # fmt: skip
    """Headline figures: routing, abstention, consumer-side latency, throughput and cost."""
    n = int(len(pred))
    model_s = float(sum(seconds))
    per_window = model_s / n if n else math.nan
    routed = pred["route"] == REVIEW if n else pd.Series(dtype=bool)
    reasons: dict[str, int] = {}
    for text in pred.loc[routed, "reasons"] if n else []:
        for kind in reason_kinds(text):
            reasons[kind] = reasons.get(kind, 0) + 1
    batch_ms = np.asarray(seconds, np.float64) * 1000.0
    return {
        "model": served.label,
        "windows": n,
        "routed": int(routed.sum()) if n else 0,
        "routed_share": float(routed.mean()) if n else math.nan,
        "abstained_share": float(pred["abstained"].astype(bool).mean()) if n else math.nan,
        "reasons": reasons,
        "model_seconds": model_s,
        "wall_seconds": float(wall_s),
        "windows_per_s_model": n / model_s if model_s > 0 else math.nan,
        "windows_per_s_end_to_end": n / wall_s if wall_s > 0 else math.nan,
        "latency_per_window_ms": per_window * 1000.0,
        "batch_latency_p50_ms": float(np.percentile(batch_ms, 50)) if batch_ms.size else math.nan,
        "batch_latency_p95_ms": float(np.percentile(batch_ms, 95)) if batch_ms.size else math.nan,
        "cost_per_1k_usd": cfg.evaluate.hourly_price_usd / 3600.0 * per_window * 1000.0,
        "hourly_price_usd": cfg.evaluate.hourly_price_usd,
        "threshold": served.threshold,
        "flagged_slices": list(served.flagged_slices),
        **(_error_rates(pred) if n else {}),
        "by_reason": reason_table(pred) if n else {},
    }


def reason_kinds(text: Any) -> list[str]:
    """The kinds of rule in a window's `reasons` ("abstained: …; missing audio" -> abstained,
    missing), each once, in order."""
    kinds: list[str] = []
    for r in str(text).split("; ") if text else []:
        kind = r.split(":")[0].split(" ")[0] if r.startswith(("abstained", "missing")) else r
        kind = "weak slice" if r.startswith("weak slice") else kind
        kind = "least confident" if r.startswith("least confident") else kind
        if kind and kind not in kinds:
            kinds.append(kind)
    return kinds


def reason_table(pred: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per routing reason: how many windows it routed and their share of the batch, and, on the
    windows with a known label, the error rate of those it routed against the accepted ones
    (a reason worth a reviewer's time routes windows that are wrong more often)."""
    known = pred["true_label"].notna()
    wrong = pred["label"].astype(str) != pred["true_label"].astype(str)
    accepted = (pred["route"] != REVIEW) & known
    accepted_rate = float(wrong[accepted].mean()) if accepted.any() else math.nan
    kinds = [reason_kinds(t) for t in pred["reasons"]]
    table: dict[str, dict[str, Any]] = {}
    for kind in dict.fromkeys(k for ks in kinds for k in ks):
        mask = pd.Series([kind in ks for ks in kinds], index=pred.index)
        with_truth = mask & known
        table[kind] = {
            "routed": int(mask.sum()),
            "share": float(mask.mean()),
            "windows_with_truth": int(with_truth.sum()),
            "error_rate": float(wrong[with_truth].mean()) if with_truth.any() else math.nan,
            "error_rate_accepted": accepted_rate,
        }
    return table


def batch_config(cfg: PipelineConfig) -> PipelineConfig:
    """`cfg` with ingest reading the batch's raw root (inference.raw_uri, else ingest.raw_uri)."""
    raw_uri = cfg.inference.raw_uri or cfg.ingest.raw_uri
    return cfg.model_copy(update={"ingest": cfg.ingest.model_copy(update={"raw_uri": raw_uri})})
