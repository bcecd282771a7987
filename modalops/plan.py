"""Capacity plan: storage, compute hours and cost per day of recordings, from a finished run's
measured figures (`modalops plan`, docs/scale.md).

Every figure is derived from something a run measured: bytes per recorded hour per stream from
its catalog, seconds per recorded hour of each data stage from Prefect's task run times (or the
stages' own `*.seconds` metrics in MLflow), training samples/s from the per-model child runs,
inference latency and cost from the model's latest batch-inference run, and speedups from what
the benchmarks wrote into the store. What was not measured is reported as such, never guessed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from modalops.secrets import redact_uri
from modalops.services import prefect_api_post
from modalops.store import ObjectStore

# The data stages as Prefect task names (the Dask fan-out adds per-batch tasks) and the
# `<stage>.seconds` metric each stage's task logs to the MLflow parent run.
DATA_STAGES: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest_recordings", "ingest_batch", "merge_ingest"),
    "align": ("align_sessions", "align_batch", "merge_alignment"),
    "validate": ("validate_samples", "sample_evidence_batch"),
    "shard": ("write_dataset_shards",),
}
STAGE_METRICS = {
    "ingest": "ingest.seconds",
    "align": "align.seconds",
    "validate": "validation.seconds",
    "shard": "shard.seconds",
}
SPEEDUP_KEY = "benchmarks/dask_stages.json"  # written by benchmarks/dask_stages.py
GPU_KEY = "benchmarks/gpu_speedup.json"  # {"train": x, "inference": y}, where someone measured it
NOT_MEASURED = "not measured"
DAYS_PER_MONTH = 30.0


class PlanError(RuntimeError):
    """A run or measurement the plan needs is missing or unreadable (the message says which)."""


@dataclass
class Measured:
    """What one finished run measured, per recorded hour of data."""

    run_key: str
    recorded_hours: float
    bytes_per_hour: dict[str, float]  # stream -> raw bytes per recorded hour
    kinds: dict[str, str]  # measured stream -> kind
    shard_bytes_per_hour: float | None = None
    stage_seconds_per_hour: dict[str, float | None] = field(default_factory=dict)
    stage_source: str = NOT_MEASURED
    train_samples_per_s: dict[str, float] = field(default_factory=dict)  # model -> samples/s
    train_epochs: float | None = None
    inference_latency_ms: float | None = None
    inference_cost_per_1k: float | None = None
    inference_run_id: str | None = None
    dask_speedup: dict[str, Any] | None = None
    gpu_speedup: dict[str, Any] | None = None
    remarks: list[str] = field(default_factory=list)


# ---- reading what a run measured ----------------------------------------------------------------


def latest_run_key(store: ObjectStore) -> str:
    """The newest run under `runs/` with a catalog (run keys start with a UTC timestamp)."""
    keys = [k for k in store.list("runs") if k.endswith("/catalog.parquet")]
    runs = sorted(k.split("/")[1] for k in keys if k.count("/") == 2)
    if not runs:
        raise PlanError(f"{store.uri('runs')}: no finished run with a catalog.parquet")
    return runs[-1]


def recorded_hours(catalog: pd.DataFrame) -> float:
    """Hours recorded: each session's longest stream, summed."""
    if "duration_s" not in catalog.columns:
        raise PlanError("catalog: no duration_s column")
    per_session = catalog.groupby("session_id")["duration_s"].max()
    return float(per_session.fillna(0).sum()) / 3600.0


def bytes_per_hour(catalog: pd.DataFrame) -> dict[str, float]:
    """stream -> sum n_bytes / sum duration_s (in hours), over the rows that have both."""
    for col in ("stream", "n_bytes", "duration_s"):
        if col not in catalog.columns:
            raise PlanError(f"catalog: no {col} column")
    rows = catalog.dropna(subset=["n_bytes", "duration_s"])
    rows = rows[rows["duration_s"].astype(float) > 0]
    out = {}
    for stream, g in rows.groupby("stream"):
        out[str(stream)] = float(g["n_bytes"].sum()) / (float(g["duration_s"].sum()) / 3600.0)
    return out


def stage_seconds_from_tasks(task_seconds: Mapping[str, float]) -> dict[str, float | None]:
    """Seconds per data stage from seconds per Prefect task name (None: no such task ran)."""
    out: dict[str, float | None] = {}
    for stage, names in DATA_STAGES.items():
        found = [task_seconds[n] for n in names if n in task_seconds]
        out[stage] = float(sum(found)) if found else None
    return out


def stage_seconds_from_metrics(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {s: (float(metrics[m]) if m in metrics else None) for s, m in STAGE_METRICS.items()}


def _duration_seconds(value: Any) -> float:
    """Prefect's JSON gives timedeltas as seconds or as ISO 8601 (`PT12.5S`, `P0DT0H1M2S`)."""
    if isinstance(value, (int, float)):
        return float(value)
    import re

    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?)?", str(value).strip())
    if not m:
        raise PlanError(f"Prefect API: unreadable duration {value!r}")
    d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


def prefect_task_seconds(api_url: str, flow_run_id: str) -> dict[str, float]:
    """Seconds per task name of a flow run and its subflows (the Dask data stages run in one),
    from the Prefect REST API (what the UI shows)."""
    import re

    subflows = prefect_api_post(
        api_url,
        "/flow_runs/filter",
        {"flow_runs": {"parent_flow_run_id": {"any_": [flow_run_id]}}, "limit": 200},
    )
    ids = [flow_run_id, *(f["id"] for f in subflows)]
    runs = prefect_api_post(
        api_url,
        "/task_runs/filter",
        {"flow_runs": {"id": {"any_": ids}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 200},
    )
    out: dict[str, float] = {}
    for tr in runs:
        name = re.sub(r"-[0-9a-z]{3}$", "", tr["name"])
        out[name] = out.get(name, 0.0) + _duration_seconds(tr.get("total_run_time", 0))
    return out


def _prefect_api_url() -> str | None:
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    from pathlib import Path

    from modalops.services import find_prefect_server

    return find_prefect_server(Path(".modalops") / "prefect")


def _read_json(store: ObjectStore, key: str) -> dict[str, Any] | None:
    if not store.exists(key):
        return None
    try:
        return json.loads(store.get_text(key))
    except ValueError as exc:
        raise PlanError(f"{store.uri(key)}: not JSON ({exc})") from None


def _shard_bytes(store: ObjectStore, version: str) -> float:
    return float(
        sum(
            len(store.get_bytes(k)) for k in store.list(f"datasets/{version}") if k.endswith(".tar")
        )
    )


def measure_run(
    store: ObjectStore,
    tracking_uri: str | None,
    experiment: str,
    model_name: str | None,
    run_key: str | None = None,
    prefect_api: str | None = "auto",
) -> Measured:
    """Everything `plan_capacity` needs from a finished run (the latest one if `run_key` is None).

    `prefect_api="auto"`: PREFECT_API_URL or a local modalops server, if one is running;
    None: do not ask Prefect (MLflow `*.seconds` metrics only)."""
    from modalops.runs import get_frame

    run_key = run_key or latest_run_key(store)
    key = f"runs/{run_key}/catalog.parquet"
    if not store.exists(key):
        raise PlanError(f"{store.uri(key)}: no catalog for run {run_key!r}")
    catalog = get_frame(store, key)
    hours = recorded_hours(catalog)
    if hours <= 0:
        raise PlanError(f"{store.uri(key)}: the catalog records no duration")
    m = Measured(
        run_key=run_key,
        recorded_hours=hours,
        bytes_per_hour=bytes_per_hour(catalog),
        kinds=(
            {str(s): str(k) for s, k in zip(catalog["stream"], catalog["kind"], strict=True)}
            if "kind" in catalog.columns
            else {}
        ),
    )
    m.stage_seconds_per_hour = dict.fromkeys(DATA_STAGES)
    m.dask_speedup = _read_json(store, SPEEDUP_KEY)
    m.gpu_speedup = _read_json(store, GPU_KEY)
    if tracking_uri is None:
        m.remarks.append("no MLflow tracking URI: stage, training and inference figures not read")
        return m
    from modalops.register.registry import tracking_errors

    # a server that does not answer: one error naming the URI with its password masked
    with tracking_errors(tracking_uri, "modalops plan"):
        _read_tracking(m, store, tracking_uri, experiment, model_name, prefect_api)
    return m


def _stage_seconds(m: Measured, parent: Any, prefect_api: str | None) -> dict[str, float | None]:
    """Seconds per data stage of the `parent` pipeline run: Prefect's task run times when the
    orchestrator can be asked, else (and for stages it has no time for) the run's metrics.
    Records in `m` where the figures came from, and an unreachable Prefect API."""
    from modalops.register.tracking import FLOW_RUN_TAG

    flow_run_id = parent.data.tags.get(FLOW_RUN_TAG)
    api = _prefect_api_url() if prefect_api == "auto" else prefect_api
    stages: dict[str, float | None] = dict.fromkeys(DATA_STAGES)
    if flow_run_id and api:
        try:
            stages = stage_seconds_from_tasks(prefect_task_seconds(api, flow_run_id))
            m.stage_source = f"Prefect task runs of flow run {flow_run_id}"
        except OSError as exc:
            m.remarks.append(
                redact_uri(f"Prefect API {api} unreachable ({exc}); stage times from MLflow")
            )
    from_metrics = stage_seconds_from_metrics(parent.data.metrics)
    if all(v is None for v in stages.values()) and any(
        v is not None for v in from_metrics.values()
    ):
        m.stage_source = f"MLflow metrics of run {parent.info.run_id}"
    for stage, v in stages.items():
        if v is None and from_metrics.get(stage) is not None:
            stages[stage] = from_metrics[stage]  # a stage Prefect has no time for
    return stages


def _read_tracking(
    m: Measured,
    store: ObjectStore,
    tracking_uri: str,
    experiment: str,
    model_name: str | None,
    prefect_api: str | None,
) -> None:
    from mlflow import MlflowClient

    from modalops.register.tracking import (
        PARENT_TAG,
        PIPELINE_ROLE,
        ROLE_TAG,
        RUN_KEY_TAG,
    )

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        where = redact_uri(tracking_uri)
        m.remarks.append(f"MLflow experiment {experiment!r} not found at {where}")
        return
    parents = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{ROLE_TAG}` = '{PIPELINE_ROLE}' and tags.`{RUN_KEY_TAG}` = "
        f"'{m.run_key}'",
        max_results=1,
    )
    if not parents:
        m.remarks.append(f"no MLflow parent run tagged {RUN_KEY_TAG}={m.run_key}")
        return
    parent = parents[0]
    hours = m.recorded_hours
    m.stage_seconds_per_hour = {
        stage: (None if v is None else v / hours)
        for stage, v in _stage_seconds(m, parent, prefect_api).items()
    }
    # shards: the dataset version this run wrote
    version = parent.data.tags.get("dataset_version")
    if version and store.list(f"datasets/{version}"):
        m.shard_bytes_per_hour = _shard_bytes(store, version) / hours
    # training: one child run per model
    children = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'"
    )
    for child in children:
        sps = child.data.metrics.get("train.samples_per_s")
        if sps is not None and math.isfinite(sps) and sps > 0:
            model = child.data.tags.get("model_id", child.info.run_name)
            m.train_samples_per_s[model] = float(sps)
        if child.data.metrics.get("train.epochs") is not None:
            m.train_epochs = float(child.data.metrics["train.epochs"])
    # batch inference: the model's latest batch run
    filt = "tags.`modalops.stage` = 'batch_inference'"
    if model_name:
        filt += f" and tags.`modalops.model_name` = '{model_name}'"
    batches = client.search_runs(
        [exp.experiment_id],
        filter_string=filt,
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if batches:
        met = batches[0].data.metrics
        m.inference_run_id = batches[0].info.run_id
        m.inference_latency_ms = met.get("inference.latency_per_window_ms")
        m.inference_cost_per_1k = met.get("inference.cost_per_1k_usd")


# ---- the plan -----------------------------------------------------------------------------------


@dataclass
class StreamStorage:
    stream: str
    kind: str
    gb_per_day: float | None
    source: str  # "measured", "kind average of <streams>", NOT_MEASURED


@dataclass
class Line:
    """Compute hours and cost per day of one kind of work (None: not measured)."""

    work: str
    hours_per_day: float | None
    usd_per_day: float | None
    note: str = ""

    @property
    def hours_per_month(self) -> float | None:
        return None if self.hours_per_day is None else self.hours_per_day * DAYS_PER_MONTH

    @property
    def usd_per_month(self) -> float | None:
        return None if self.usd_per_day is None else self.usd_per_day * DAYS_PER_MONTH


@dataclass
class Plan:
    hours_per_day: float
    run_key: str
    price_per_hour: float
    storage_price_gb_month: float | None
    streams: list[StreamStorage]
    raw_gb_per_day: float | None
    shard_gb_per_day: float | None
    compute: list[Line]
    dominating_stage: str | None
    windows_per_day: float
    scaling: list[str]
    remarks: list[str]

    def storage_usd_per_month(self, months: float = 1.0) -> float | None:
        """Cost of storing one month's raw + shards (after `months` of accumulation: × months)."""
        if self.storage_price_gb_month is None or self.raw_gb_per_day is None:
            return None
        gb = (self.raw_gb_per_day + (self.shard_gb_per_day or 0.0)) * DAYS_PER_MONTH
        return gb * months * self.storage_price_gb_month

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for line, raw in zip(self.compute, d["compute"], strict=True):
            raw["hours_per_month"] = line.hours_per_month
            raw["usd_per_month"] = line.usd_per_month
        d["raw_gb_per_month"] = _times(self.raw_gb_per_day, DAYS_PER_MONTH)
        d["shard_gb_per_month"] = _times(self.shard_gb_per_day, DAYS_PER_MONTH)
        d["storage_usd_first_month"] = self.storage_usd_per_month()
        return d


def _times(x: float | None, k: float) -> float | None:
    return None if x is None else x * k


def plan_capacity(
    measured: Measured,
    stream_kinds: Mapping[str, str],
    hours_per_day: float,
    hop_s: float,
    price_per_hour: float,
    storage_price_gb_month: float | None = None,
    train_fraction: float = 1.0,
    epochs: float | None = None,
) -> Plan:
    """The plan for `hours_per_day` recorded hours of a dataset with streams `stream_kinds`
    (name -> kind, from the user's spec). Every figure is linear in `hours_per_day`."""
    if hours_per_day <= 0:
        raise PlanError(f"--hours-per-day: expected a positive number, got {hours_per_day}")
    if hop_s <= 0:
        raise PlanError(f"align.hop_s: expected a positive number, got {hop_s}")
    H = float(hours_per_day)
    remarks = list(measured.remarks)
    streams: list[StreamStorage] = []
    for name, kind in stream_kinds.items():
        if name in measured.bytes_per_hour:
            bph, source = measured.bytes_per_hour[name], "measured"
        else:
            same = [
                s for s, k in measured.kinds.items() if k == kind and s in measured.bytes_per_hour
            ]
            if same:
                bph = sum(measured.bytes_per_hour[s] for s in same) / len(same)
                source = f"{kind} average of {', '.join(sorted(same))} in run {measured.run_key}"
            else:
                bph, source = None, NOT_MEASURED
        streams.append(StreamStorage(name, kind, None if bph is None else bph * H / 1e9, source))
    known = [s.gb_per_day for s in streams if s.gb_per_day is not None]
    raw_gb = sum(known) if known else None
    if len(known) < len(streams):
        remarks.append(
            "raw storage leaves out streams with no measurement: "
            + ", ".join(s.stream for s in streams if s.gb_per_day is None)
        )
    shard_gb = _times(measured.shard_bytes_per_hour, H / 1e9)

    compute: list[Line] = []
    stage_hours = {}
    for stage, sph in measured.stage_seconds_per_hour.items():
        hours = None if sph is None else sph * H / 3600.0
        stage_hours[stage] = hours
        compute.append(
            Line(f"data: {stage}", hours, _times(hours, price_per_hour), measured.stage_source)
        )
    measured_stages = {s: h for s, h in stage_hours.items() if h is not None}
    dominating = max(measured_stages, key=measured_stages.get) if measured_stages else None

    windows = H * 3600.0 / hop_s
    ep = epochs if epochs is not None else measured.train_epochs
    if measured.train_samples_per_s and ep is not None:
        train_s = sum(
            windows * train_fraction * ep / sps for sps in measured.train_samples_per_s.values()
        )
        th = train_s / 3600.0
        compute.append(
            Line(
                "training",
                th,
                th * price_per_hour,
                f"{len(measured.train_samples_per_s)} models "
                f"({', '.join(sorted(measured.train_samples_per_s))}), {ep:g} epochs over each "
                f"day's {train_fraction:.0%} train share, at the measured samples/s",
            )
        )
    else:
        compute.append(Line("training", None, None, NOT_MEASURED + " (no train.samples_per_s)"))
    if measured.inference_latency_ms is not None:
        ih = windows * measured.inference_latency_ms / 1000.0 / 3600.0
        cost = (
            windows / 1000.0 * measured.inference_cost_per_1k
            if measured.inference_cost_per_1k is not None
            else ih * price_per_hour
        )
        compute.append(
            Line(
                "batch inference",
                ih,
                cost,
                f"{windows:,.0f} windows/day at {measured.inference_latency_ms:.2f} ms "
                f"(MLflow run {measured.inference_run_id})",
            )
        )
    else:
        compute.append(Line("batch inference", None, None, NOT_MEASURED + " (no batch run)"))

    return Plan(
        hours_per_day=H,
        run_key=measured.run_key,
        price_per_hour=price_per_hour,
        storage_price_gb_month=storage_price_gb_month,
        streams=streams,
        raw_gb_per_day=raw_gb,
        shard_gb_per_day=shard_gb,
        compute=compute,
        dominating_stage=dominating,
        windows_per_day=windows,
        scaling=_scaling(measured, stage_hours),
        remarks=remarks,
    )


def _scaling(measured: Measured, stage_hours: Mapping[str, float | None]) -> list[str]:
    """How the figures change with Dask workers or a GPU, only where a benchmark measured it."""
    out = []
    dask = measured.dask_speedup
    if dask and isinstance(dask.get("speedup"), (int, float)):
        workers = dask.get("workers", "?")
        stages = ", ".join(dask.get("stages", ["ingest", "align", "validate"]))
        out.append(
            f"Dask, {workers} workers: data stages ({stages}) {dask['speedup']:.2f}x faster in "
            f"wall time (benchmarks/dask_stages.py: {dask.get('sessions', '?')} sessions, "
            f"{dask.get('serial_s', float('nan')):.1f} s -> "
            f"{dask.get('dask_warm_s', dask.get('dask_s', float('nan'))):.1f} s "
            f"on {dask.get('cpus', '?')} CPUs); compute hours stay about the same, the day's data "
            "is done sooner"
            + (
                f"; {dask['speedup_with_cluster_start']:.2f}x when the run starts its own cluster"
                if isinstance(dask.get("speedup_with_cluster_start"), (int, float))
                else ""
            )
        )
    else:
        out.append(f"Dask workers: {NOT_MEASURED} (run benchmarks/dask_stages.py)")
    gpu = measured.gpu_speedup
    if gpu:
        out.extend(
            f"GPU: {k} {float(v):.2f}x faster"
            for k, v in gpu.items()
            if isinstance(v, (int, float))
        )
    else:
        out.append(f"GPU: {NOT_MEASURED}")
    return out


# ---- text ---------------------------------------------------------------------------------------


def _f(x: float | None, fmt: str = ".3f", unit: str = "") -> str:
    """`x` in `fmt` (a width and precision), or `-` right-aligned in that width."""
    width = int(fmt.split(".")[0] or 0)
    return f"{'-':>{width}}" if x is None else f"{x:{fmt}}{unit}"


def format_plan(plan: Plan) -> str:
    """The table `modalops plan` prints."""
    m = DAYS_PER_MONTH
    lines = [
        f"capacity plan: {plan.hours_per_day:g} recorded hours/day "
        f"(measured on run {plan.run_key}; compute at ${plan.price_per_hour:g}/h)",
        "",
        "storage                    GB/day       GB/month   source",
    ]
    for s in plan.streams:
        lines.append(
            f"  {s.stream + ' (' + s.kind + ')':<24} {_f(s.gb_per_day, '10.4f')}   "
            f"{_f(_times(s.gb_per_day, m), '10.3f')}   {s.source}"
        )
    lines.append(
        f"  {'raw, all streams':<24} {_f(plan.raw_gb_per_day, '10.4f')}   "
        f"{_f(_times(plan.raw_gb_per_day, m), '10.3f')}"
    )
    lines.append(
        f"  {'shards':<24} {_f(plan.shard_gb_per_day, '10.4f')}   "
        f"{_f(_times(plan.shard_gb_per_day, m), '10.3f')}"
    )
    cost = plan.storage_usd_per_month()
    if cost is not None:
        lines.append(
            f"  storing one month's raw + shards: ${cost:.2f}/month "
            f"(at ${plan.storage_price_gb_month:g}/GB-month; it grows by that each month kept)"
        )
    lines += ["", "compute                    h/day        h/month     $/day      $/month   basis"]
    for c in plan.compute:
        lines.append(
            f"  {c.work:<24} {_f(c.hours_per_day, '10.4f')}   {_f(c.hours_per_month, '10.3f')}  "
            f"{_f(c.usd_per_day, '8.4f')}   {_f(c.usd_per_month, '8.3f')}   {c.note}"
        )
    lines += [
        f"  (-: {NOT_MEASURED})",
        "",
        f"dominating data stage: {plan.dominating_stage or NOT_MEASURED}",
        f"batch inference: {plan.windows_per_day:,.0f} windows/day (3600 / hop_s per hour)",
        "",
        "scaling:",
        *(f"  {s}" for s in plan.scaling),
    ]
    if plan.remarks:
        lines += ["", "remarks:", *(f"  {n}" for n in plan.remarks)]
    return "\n".join(lines)


def spec_stream_kinds(spec: Any) -> dict[str, str]:
    """name -> kind of every stream the user's spec declares."""
    return {name: str(spec.streams[name].kind) for name in spec.stream_names}


def train_share(val_fraction: float, test_fraction: float) -> float:
    return 1.0 - val_fraction - test_fraction


__all__: Sequence[str] = [
    "Measured",
    "Plan",
    "PlanError",
    "format_plan",
    "measure_run",
    "plan_capacity",
    "spec_stream_kinds",
]
