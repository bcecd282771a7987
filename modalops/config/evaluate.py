"""Config sections for evaluation and model registration."""

from __future__ import annotations

from pydantic import Field

from modalops.config.base import Section


class EvaluateConfig(Section):
    """What the held-out evaluation measures."""

    slices: list[str] = Field(
        default_factory=lambda: ["site", "lighting", "camera_model", "microphone"],
        description="Metadata columns whose values are evaluated as slices.",
    )
    ece_bins: int = Field(default=10, ge=2, description="Bins for expected calibration error.")
    slice_margin: float = Field(
        default=0.10, ge=0, le=1, description="Flag slices whose macro-F1 is this far below overall."
    )


class RegistryConfig(Section):
    """Where and under what name the fused model is registered."""

    tracking_uri: str = Field(
        default="sqlite:///.modalops/mlflow.db",
        description="MLflow tracking URI (sqlite:///path, postgresql://..., or http://...).",
    )
    experiment: str = Field(default="modalops", description="MLflow experiment name.")
    model_name: str = Field(default="modalops-fused", description="Registered model name.")
    artifact_location: str | None = Field(
        default=None,
        description="Where the experiment keeps artifacts; defaults to <store.uri>/mlflow.",
    )
