"""What the training pipeline runs and reports: model plan, lineage, and the closing summary."""

from __future__ import annotations

from typing import Any

from modalops.config.pipeline import PipelineConfig
from modalops.config.train import TrainConfig


def model_plan(cfg: TrainConfig) -> list[tuple[str, list[str]]]:
    """The fused model first, then one unimodal baseline per modality (same code, one input)."""
    plan = [("fused", list(cfg.modalities))]
    if cfg.baselines:
        plan += [(m, [m]) for m in cfg.modalities]
    return plan


def lineage(cfg: PipelineConfig) -> dict[str, Any]:
    """Config that shapes the dataset's content; part of the dataset version's hash."""
    return {
        "align": cfg.align.model_dump(mode="json"),
        "validation": cfg.validation.model_dump(mode="json"),
    }


def champion_dataset_version(tracking_uri: str, model_name: str) -> str | None:
    """The dataset version behind the current `champion`, or None when there is none yet."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, "champion")
    except MlflowException:
        return None
    return (version.tags or {}).get("dataset_version")


def pipeline_summary(run, manifest, verdict, report, registered) -> dict[str, Any]:
    """The flow's return value: what `modalops demo` prints and benchmarks read."""
    headline = report.headline
    models = report.models.set_index("model_id")
    unimodal = {m: float(models.loc[m, "macro_f1"]) for m in models.index if m != "fused"}
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
        "splits": {k: v.n_samples for k, v in manifest.splits.items()},
    }
