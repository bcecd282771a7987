"""The pipeline's MLflow record: one parent run per pipeline run, one nested child per model.

The parent carries the resolved config (params), the dataset version (an input), each stage's
summary numbers as metrics (`ingest.`, `align.`, `validation.`, `eval.`) and each stage's files
in a top-level folder (`ingest/`, `align/`, `validation/`, `training/`, `evaluation/`,
`registration/`). A child per trained model (`fused`, `baseline:<stream>`) carries that model's params and
per-epoch curves (`train/loss`, `val/loss`, `val/macro_f1`, `val/accuracy`, logged by Lightning's
MLflow logger inside the training process); the fused child also holds the logged pyfunc that the
registered version points at. Everything here is plain MLflow client
calls, so the tasks stay thin and a test can drive it without Prefect.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modalops.register.code_version import code_tags
from modalops.register.registry import (
    _ensure_experiment,
    _log_dataset_input,
    _sqlite_path,
    absolute_tracking_uri,
    flatten_config,
)

ROLE_TAG = "modalops.role"
PIPELINE_ROLE, MODEL_ROLE = "pipeline", "model"
RUN_KEY_TAG = "modalops.run_key"
FLOW_RUN_TAG = "prefect_flow_run_id"
PARENT_TAG = "mlflow.parentRunId"  # what `mlflow.start_run(nested=True)` sets; the UI nests on it
_METRIC_KEY = re.compile(r"[^A-Za-z0-9_\-./ ]+")


@dataclass(frozen=True)
class TrackingContext:
    """Where the pipeline's runs live; passed between tasks and into training (picklable)."""

    tracking_uri: str  # absolute: a training subprocess runs in another working directory
    experiment_id: str
    parent_run_id: str
    s3_endpoint_url: str | None = None  # MLflow's S3 artifact repository reads it from the env

    def client(self):
        """An MlflowClient on the tracking URI (sets the S3 endpoint variable when needed)."""
        from mlflow import MlflowClient

        if self.s3_endpoint_url and not os.environ.get("MLFLOW_S3_ENDPOINT_URL"):
            os.environ["MLFLOW_S3_ENDPOINT_URL"] = self.s3_endpoint_url
        return MlflowClient(tracking_uri=self.tracking_uri)


# ---- the parent run ----------------------------------------------------------------------------


def start_pipeline_run(
    tracking_uri: str,
    experiment: str,
    *,
    run_name: str,
    tags: Mapping[str, Any],
    config: Mapping[str, Any],
    artifact_location: str | None = None,
    s3_endpoint_url: str | None = None,
) -> TrackingContext:
    """Create the pipeline's parent run (RUNNING) with `tags` and the flattened `config` as
    params (secrets dropped by `flatten_config`)."""
    uri = absolute_tracking_uri(tracking_uri)
    probe = TrackingContext(uri, "", "", s3_endpoint_url)
    client = probe.client()
    db = _sqlite_path(uri)
    if artifact_location is None and db is not None:
        # MLflow's default is ./mlruns under the current directory: keep artifacts by the DB.
        artifact_location = (db.parent / "mlartifacts").as_uri()
    experiment_id = _ensure_experiment(client, experiment, artifact_location)
    all_tags = {
        ROLE_TAG: PIPELINE_ROLE,
        **code_tags(),
        **{k: str(v) for k, v in tags.items() if v is not None},
    }
    run = client.create_run(experiment_id, tags=all_tags, run_name=run_name)
    ctx = TrackingContext(uri, experiment_id, run.info.run_id, s3_endpoint_url)
    log_params(ctx, flatten_config(config))
    return ctx


def end_pipeline_run(ctx: TrackingContext, status: str = "FINISHED", note: str = "") -> None:
    """Terminate the parent run (FINISHED, FAILED or KILLED); `note` says why, as a tag."""
    client = ctx.client()
    if note:
        client.set_tag(ctx.parent_run_id, "modalops.outcome", note[:4900])
    client.set_terminated(ctx.parent_run_id, status=status)


def find_pipeline_run(
    tracking_uri: str, experiment: str, flow_run_id: str
) -> TrackingContext | None:
    """The parent run a Prefect flow run created (for a failure hook, which has no return values)."""
    from mlflow import MlflowClient

    uri = absolute_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{ROLE_TAG}` = '{PIPELINE_ROLE}' and tags.{FLOW_RUN_TAG} = "
        f"'{flow_run_id}'",
        max_results=1,
    )
    return TrackingContext(uri, exp.experiment_id, runs[0].info.run_id) if runs else None


def pipeline_run_name(run_key: str, stage: str = "train") -> str:
    """A name that fits MLflow's runs list (about 20 characters show): `train 12-07 03:00`
    from run key `20261207T030000Z-621b1e` (UTC, as the key); the key itself stays a tag."""
    match = re.match(r"\d{4}(\d\d)(\d\d)T(\d\d)(\d\d)", run_key)
    if match is None:
        return f"{stage} {run_key}"
    month, day, hour, minute = match.groups()
    return f"{stage} {month}-{day} {hour}:{minute}"


# ---- child runs, one per trained model ----------------------------------------------------------


def model_run_name(model_id: str) -> str:
    """The child run's name: `fused`, or `baseline:<stream>` for a unimodal baseline."""
    from modalops.evaluate import FUSED_ID

    return model_id if model_id == FUSED_ID else f"baseline:{model_id}"


def start_model_run(
    ctx: TrackingContext,
    model_id: str,
    streams: Sequence[str],
    train_config: Mapping[str, Any],
    tags: Mapping[str, Any] | None = None,
) -> str:
    """A child run of the parent, named after the model; params: model id, streams, train.*."""
    client = ctx.client()
    all_tags = {
        PARENT_TAG: ctx.parent_run_id,
        ROLE_TAG: MODEL_ROLE,
        "model_id": model_id,
        **code_tags(),
        **{k: str(v) for k, v in (tags or {}).items() if v is not None},
    }
    run = client.create_run(ctx.experiment_id, tags=all_tags, run_name=model_run_name(model_id))
    params = {"model_id": model_id, "streams": json.dumps(list(streams))}
    params.update(flatten_config(train_config, prefix="train"))
    log_params(ctx, params, run.info.run_id)
    return run.info.run_id


def end_model_run(
    ctx: TrackingContext,
    run_id: str,
    metrics: Mapping[str, float] | None = None,
    status: str = "FINISHED",
) -> None:
    """Close a child run with the training summary: `n_params` as a param, the rest as
    `best.*` / `train.*` metrics (never the curves' own names: those hold one point per epoch)."""
    client = ctx.client()
    metrics = dict(metrics or {})
    if "n_params" in metrics:
        log_params(ctx, {"n_params": str(int(metrics.pop("n_params")))}, run_id)
    best = {f"best.{k}": v for k, v in metrics.items() if k.startswith("val_")}
    if "best_epoch" in metrics:
        best["best.epoch"] = metrics.pop("best_epoch")
    rest = {f"train.{k}": v for k, v in metrics.items() if not k.startswith("val_")}
    log_metrics(ctx, {**best, **rest}, run_id)
    client.set_terminated(run_id, status=status)


def model_runs(ctx: TrackingContext) -> dict[str, str]:
    """model id -> child run id of the parent (the latest FINISHED one per model)."""
    client = ctx.client()
    runs = client.search_runs(
        [ctx.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{ctx.parent_run_id}' and "
        f"attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
    )
    return {r.data.tags.get("model_id", r.info.run_name): r.info.run_id for r in runs}


# ---- what the stages log ------------------------------------------------------------------------


def log_params(ctx: TrackingContext, params: Mapping[str, str], run_id: str | None = None) -> None:
    """Params in batches of 100 (MLflow's limit per call)."""
    from mlflow.entities import Param

    items = [Param(k, str(v)) for k, v in params.items()]
    client = ctx.client()
    for i in range(0, len(items), 100):
        client.log_batch(run_id or ctx.parent_run_id, params=items[i : i + 100])


def metric_key(key: str) -> str:
    """A key MLflow accepts (letters, digits, `_-./ `): other characters become `_`."""
    return _METRIC_KEY.sub("_", key)[:250]


def finite_metrics(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric, finite entries of `values` (bools as 0/1), keys prefixed with `prefix.`."""
    out = {}
    for k, v in values.items():
        if isinstance(v, numbers.Real) and math.isfinite(float(v)):  # bools count as 0/1
            out[metric_key(f"{prefix}.{k}" if prefix else str(k))] = float(v)
    return out


def log_metrics(
    ctx: TrackingContext, metrics: Mapping[str, float], run_id: str | None = None, step: int = 0
) -> None:
    """Metrics in one batch per 1000 (MLflow's limit per call); non-finite values left out."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, v, now, step) for k, v in finite_metrics(metrics).items()]
    client = ctx.client()
    for i in range(0, len(items), 1000):
        client.log_batch(run_id or ctx.parent_run_id, metrics=items[i : i + 1000])


def log_curves(
    ctx: TrackingContext, points: Sequence[tuple[str, float, int]], run_id: str | None = None
) -> None:
    """Metric points `(key, value, step)`: one key at several steps is drawn as a curve
    (the evaluation's skew curves use the shift in milliseconds as the step)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [
        Metric(metric_key(k), float(v), now, int(step))
        for k, v, step in points
        if isinstance(v, numbers.Real) and math.isfinite(float(v))
    ]
    client = ctx.client()
    for i in range(0, len(items), 1000):
        client.log_batch(run_id or ctx.parent_run_id, metrics=items[i : i + 1000])


def log_tags(ctx: TrackingContext, tags: Mapping[str, Any], run_id: str | None = None) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, str(v)[:4900]) for k, v in tags.items() if v is not None]
    if items:
        ctx.client().log_batch(run_id or ctx.parent_run_id, tags=items)


def log_text(
    ctx: TrackingContext, text: str, artifact_file: str, run_id: str | None = None
) -> None:
    ctx.client().log_text(run_id or ctx.parent_run_id, text, artifact_file)


def log_files(
    ctx: TrackingContext, files: Mapping[str, str | Path], run_id: str | None = None
) -> None:
    """Local files at the artifact paths given as keys (`align/plots/x.png` -> path), in one
    upload: the files are laid out in a temporary tree and logged with `log_artifacts`."""
    if not files:
        return
    with _staged() as root:
        for rel, path in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        ctx.client().log_artifacts(run_id or ctx.parent_run_id, str(root))


def log_dir(
    ctx: TrackingContext, local_dir: str | Path, artifact_path: str, run_id: str | None = None
) -> None:
    """A whole local folder (e.g. the Great Expectations Data Docs site) under `artifact_path`."""
    ctx.client().log_artifacts(run_id or ctx.parent_run_id, str(local_dir), artifact_path)


def log_store_files(
    ctx: TrackingContext, store: Any, files: Mapping[str, str], run_id: str | None = None
) -> None:
    """Object-store keys at the artifact paths given as keys (`ingest/quarantine.parquet` -> key);
    keys that do not exist are left out."""
    with _staged() as root:
        staged = {}
        for rel, key in files.items():
            if store.exists(key):
                staged[rel] = store.get_file(key, root / "_download" / rel)
        log_files(ctx, staged, run_id)


def store_tree(store: Any, prefix: str, artifact_path: str) -> dict[str, str]:
    """Every key under `prefix` mapped to the same relative path under `artifact_path`."""
    base = prefix.rstrip("/") + "/"
    return {
        f"{artifact_path}/{k[len(base) :]}": k for k in store.list(prefix) if k.startswith(base)
    }


@contextlib.contextmanager
def _staged() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="modalops-mlflow-") as tmp:
        yield Path(tmp)


# ---- the dataset version as an input -----------------------------------------------------------


def log_dataset_input(
    ctx: TrackingContext,
    dataset: Any,
    run_ids: Sequence[str] | None = None,
    context: str = "training",
) -> None:
    """Log an mlflow Dataset (see `registry.dataset_input_of`) as an input of each run."""
    if dataset is None:
        return
    client = ctx.client()
    for run_id in run_ids or [ctx.parent_run_id]:
        _log_dataset_input(client, run_id, dataset, context)


# ---- stage summaries as metrics -----------------------------------------------------------------


def ingest_metrics(catalog: Any, quarantine: Any) -> dict[str, float]:
    """`ingest.*`: sessions and streams catalogued, items quarantined (in all and per stream)."""
    out = {
        "ingest.sessions": float(catalog["session_id"].nunique()) if len(catalog) else 0.0,
        "ingest.streams": float(len(catalog)),
        "ingest.quarantined": float(len(quarantine)),
    }
    if len(quarantine):
        out["ingest.quarantined_sessions"] = float(quarantine["session_id"].nunique())
        for stream, n in quarantine["stream"].dropna().astype(str).value_counts().items():
            out[metric_key(f"ingest.quarantined.{stream}")] = float(n)
    return out


def align_metrics(summary: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """(`align.<key>` metrics from the summary's numbers, `align.<key>` tags from its words)."""
    metrics = finite_metrics(summary, "align")
    tags = {
        f"align.{k}": str(v)
        for k, v in summary.items()
        if isinstance(v, str) and metric_key(f"align.{k}") not in metrics
    }
    return metrics, tags


def validation_metrics(result: Any, label_reason: str | None = None) -> dict[str, float]:
    """`validation.*` from a ValidationResult: bad fraction, rejected and flagged samples,
    and one `validation.failed.<check>` per check (1 failed, 0 passed) so runs compare."""
    rejected = result.rejected
    out = {
        "validation.passed": float(bool(result.passed)),
        "validation.bad_fraction": float(result.bad_fraction),
        "validation.rejected_samples": float(
            len(rejected.drop_duplicates(["session_id", "window_index"])) if len(rejected) else 0
        ),
        "validation.quarantine_rows": float(len(result.quarantine)),
        "validation.checks_failed": float(
            sum(not c.passed and c.severity == "fail" for c in result.checks)
        ),
        "validation.checks_warned": float(
            sum(not c.passed and c.severity != "fail" for c in result.checks)
        ),
    }
    if label_reason is not None:
        flagged = rejected["reason"].astype(str).str.startswith(label_reason + ":").sum()
        out["validation.label_flagged_samples"] = float(flagged) if len(rejected) else 0.0
    for c in result.checks:
        out[metric_key(f"validation.failed.{c.check}")] = float(not c.passed)
    return out


# ---- registration -------------------------------------------------------------------------------


def version_tags(ctx: TrackingContext) -> dict[str, str]:
    """Tags for the registered version from the parent run: its id and, when the align stage
    counted any, `reviewed_labels` (windows whose label a review set)."""
    data = ctx.client().get_run(ctx.parent_run_id).data
    tags = {"pipeline_run_id": ctx.parent_run_id}
    reviewed = data.metrics.get("align.reviewed_labels", data.tags.get("align.reviewed_labels"))
    if reviewed is not None:
        tags["reviewed_labels"] = str(int(float(reviewed)))
    return tags


def record_registration(ctx: TrackingContext, result: Any, report: Any) -> None:
    """On the parent: the report with the gate's decision under `evaluation/`, the decision
    under `registration/`, and which version the pipeline registered."""
    client = ctx.client()
    client.log_text(ctx.parent_run_id, report.to_json(), "evaluation/report.json")
    client.log_dict(ctx.parent_run_id, report.gate or {}, "registration/gate.json")
    log_tags(
        ctx,
        {
            "registered_model": result.model_name,
            "model_version": result.model_version,
            "model_run_id": result.run_id,
            "promotion.decision": result.decision.decision if result.decision else "none",
        },
    )
