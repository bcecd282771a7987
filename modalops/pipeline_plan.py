"""What the training pipeline runs and reports: model plan, lineage, and the closing summary."""

from __future__ import annotations

from typing import Any

from modalops.config.loading import ConfigError
from modalops.config.pipeline import PipelineConfig
from modalops.dataset.spec import DatasetSpec
from modalops.train import FUSED_ID
from modalops.train.training import model_plan

__all__ = [
    "check_config_against_spec",
    "lineage",
    "model_label",
    "model_plan",
    "pipeline_summary",
]


def model_label(model_id: str, streams: list[str]) -> str:
    """What a person calls a planned model: `fused`, or `baseline:<stream>` for a single-stream
    baseline (whose model id is the bare stream name)."""
    if model_id == FUSED_ID:
        return FUSED_ID
    return f"baseline:{'+'.join(streams)}"


def check_config_against_spec(cfg: PipelineConfig, spec: DatasetSpec) -> None:
    """Config values that name streams or metadata columns must exist in the spec."""
    streams, columns = set(spec.streams), set(spec.meta_columns)
    named = [
        ("train.streams", cfg.train.streams, streams),
        ("train.balance_group", cfg.train.balance_group, columns),
        ("validation.subgroup_cols", cfg.validation.subgroup_cols, columns),
        ("validation.required_streams", cfg.validation.required_streams, streams),
        ("validation.label_check_streams", cfg.validation.label_check_streams, streams),
        ("evaluate.slices", cfg.evaluate.slices, columns),
        ("shard.stratify_by", cfg.shard.stratify_by, columns),
        ("shard.group_by", cfg.shard.group_by, columns),
    ]
    problems = []
    for key, value, known in named:
        values = [] if value is None else [value] if isinstance(value, str) else list(value)
        unknown = [v for v in values if v not in known]
        if unknown:
            what = "streams" if known is streams else "metadata columns"
            problems.append(
                f"{key}: {unknown} are not {what} of dataset {spec.name!r} ({sorted(known)})"
            )
    from modalops.infer.verify import check_rules

    try:
        check_rules(cfg.inference.verification, spec)
    except ValueError as exc:
        problems.append(f"inference.{exc}")
    if problems:
        raise ConfigError(
            "configuration does not fit the dataset spec:\n  - " + "\n  - ".join(problems)
        )


def lineage(cfg: PipelineConfig, spec: DatasetSpec) -> dict[str, Any]:
    """What shapes the dataset's content; part of the dataset version's hash."""
    return {
        "spec_digest": spec.digest(),
        "align": cfg.align.model_dump(mode="json"),
        "validation": cfg.validation.model_dump(mode="json"),
    }


def champion_dataset_version(tracking_uri: str, model_name: str) -> str | None:
    """The dataset version behind the current `champion`, or None when there is none yet."""
    import mlflow

    from modalops.register.registry import current_champion, registry_read

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    champion = current_champion(client, model_name)  # a failed read raises, never "none yet"
    if champion is None:
        return None
    with registry_read(client, f"{model_name} v{champion}", "planning which sessions are new"):
        version = client.get_model_version(model_name, champion)
    return (version.tags or {}).get("dataset_version")


def pipeline_summary(run, manifest, verdict, report, registered, tracking=None) -> dict[str, Any]:
    """The flow's return value: what `modalops demo` prints and benchmarks read.

    `mlflow_run_id` is the run holding the registered model (the fused model's run),
    `mlflow_parent_run_id` the pipeline's parent run (a register.tracking.TrackingContext)."""
    headline = report.headline
    models = report.models.set_index("model_id")
    unimodal = {m: float(models.loc[m, "macro_f1"]) for m in models.index if m != FUSED_ID}
    return {
        "run_key": run.run_key,
        "flow_run_id": None if run.flow_run_id is None else str(run.flow_run_id),
        "dataset_version": manifest.version,
        "validation_passed": bool(verdict.passed),
        "bad_fraction": float(verdict.bad_fraction),
        "fused_macro_f1": headline["fused_macro_f1"],
        "unimodal_macro_f1": unimodal,
        "best_unimodal": headline["best_unimodal"],
        "lift": headline["lift"],
        "headline": headline,
        "model_name": registered.model_name,
        "model_version": registered.model_version,
        "aliases": list(registered.aliases),
        "promoted": bool(registered.promoted),
        "promotion_reasons": list(registered.reasons),
        "mlflow_run_id": registered.run_id,
        "mlflow_parent_run_id": tracking.parent_run_id if tracking is not None else None,
        "splits": {k: v.n_samples for k, v in manifest.splits.items()},
        "models": [
            {
                "model_id": str(row["model_id"]),
                "streams": str(row.get("streams", "")),
                **{k: float(row[k]) for k in ("macro_f1", "accuracy", "ece") if k in row},
            }
            for row in report.models.to_dict("records")
        ],
    }
