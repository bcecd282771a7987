"""Config sections for evaluation, the promotion gate and model registration."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, PrivateAttr, field_serializer, field_validator, model_validator

from modalops.config.base import Section
from modalops.secrets import env_refs, expand_env_refs, redact_uri, uri_password


class EvaluateConfig(Section):
    """What the held-out evaluation measures."""

    slices: list[str] | None = Field(
        default=None,
        description="Metadata columns whose values are evaluated as slices; null: the dataset "
        "spec's metadata.slices.",
    )
    ece_bins: int = Field(default=10, ge=2, description="Bins for expected calibration error.")
    slice_margin: float = Field(
        default=0.10,
        ge=0,
        le=1,
        description="Flag slices whose macro-F1 is this far below overall.",
    )
    n_boot: int = Field(
        default=500, ge=10, description="Bootstrap resamples (by session) for 95% intervals."
    )
    seed: int = Field(default=0, description="Seed of the bootstrap resampling.")
    abstention_target: Literal["precision", "risk"] = Field(
        default="precision",
        description="What the abstention threshold is chosen for on validation: a minimum "
        "precision among answered samples, or a maximum selective risk (error rate).",
    )
    abstention_value: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="The target: minimum precision (abstention_target=precision) or maximum "
        "risk (abstention_target=risk) among answered validation samples.",
    )
    calibrate: bool = Field(
        default=True, description="Fit temperature scaling on validation before abstention."
    )
    min_slice_n: int = Field(
        default=5,
        ge=1,
        description="Slices with fewer test samples are reported but never flagged.",
    )
    batch_size: int = Field(default=64, ge=1, description="Batch size for scoring the splits.")
    latency_samples: int = Field(
        default=32, ge=1, description="Samples timed one by one for per-sample latency."
    )
    hourly_price_usd: float = Field(
        default=0.10,
        ge=0,
        description="Hourly price of the serving hardware, for cost per 1,000 predictions.",
    )
    robustness: bool = Field(
        default=True,
        description="Evaluate the fused model with each stream removed, and replaced by noise, "
        "in turn (the stream-loss table).",
    )
    skew: bool = Field(
        default=True,
        description="Re-cut the held-out test sessions from the raw recordings with each "
        "non-reference stream's clock shifted by +-skew_s, and score the fused model and that "
        "stream's baseline on each (the skew curves).",
    )
    skew_s: list[float] = Field(
        default=[0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0],
        description="Clock shifts in seconds for the skew curves; each is applied with both "
        "signs (0 once).",
    )
    noise_seed: int = Field(
        default=0, description="Seed of the Gaussian noise that replaces a stream's tensors."
    )

    @field_validator("skew_s")
    @classmethod
    def _check_skew(cls, value: list[float]) -> list[float]:
        if any(not math.isfinite(v) or v < 0 for v in value):
            raise ValueError(f"skew_s: shifts are magnitudes in seconds (>= 0), got {value}")
        return sorted(set(value))


class PromotionGateConfig(Section):
    """When a challenger may replace the champion (checked on the same test split)."""

    min_macro_f1: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Value threshold: the challenger's test macro-F1 must reach this, "
        "even when there is no champion yet.",
    )
    min_improvement: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Change threshold: the challenger must beat the re-scored champion's "
        "macro-F1 by more than zero and by at least this much.",
    )
    max_slice_regression: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="No slice flagged in the report may lose more macro-F1 than this "
        "against the champion.",
    )
    max_ece_increase: float = Field(
        default=0.05, ge=0, le=1, description="ECE may not worsen by more than this."
    )


class RegistryConfig(Section):
    """Where and under what name the fused model is registered."""

    tracking_uri: str = Field(
        default="sqlite:///.modalops/mlflow.db",
        description="MLflow tracking URI (sqlite:///path, postgresql://..., or http://...).",
    )
    experiment: str = Field(default="modalops", description="MLflow experiment name.")

    _tracking_uri_ref: str | None = PrivateAttr(default=None)

    @field_serializer("tracking_uri", when_used="json")
    def _tracking_uri_for_json(self, value: str) -> str:
        # JSON dumps go to Prefect (deployment and flow-run parameters) and MLflow params: the
        # `${VAR}` form the user wrote travels as written (the worker expands it); a literal
        # password is masked (deploy refuses such a config: its runs could not connect)
        return self._tracking_uri_ref or redact_uri(value)

    @model_validator(mode="after")
    def _expand_env_refs(self) -> RegistryConfig:
        value = self.tracking_uri
        field = "registry.tracking_uri"
        if env_refs(value):
            self._tracking_uri_ref = value
            # straight into the dict: an assignment would validate (and come back here) again
            self.__dict__["tracking_uri"] = expand_env_refs(value, field)
        elif (
            self._tracking_uri_ref is None
            or expand_env_refs(self._tracking_uri_ref, field) != value
        ):
            self._tracking_uri_ref = None
            expand_env_refs(value, field)  # refuses a masked password
        return self

    def tracking_uri_has_literal_password(self) -> bool:
        """Whether the tracking URI carries a password written out, not a `${VAR}` reference."""
        return self._tracking_uri_ref is None and uri_password(self.tracking_uri) is not None

    def check_deployable(self) -> None:
        """Refuse a tracking URI with a password written out: a deployment stores its parameters
        with it masked (***), and its runs could not connect."""
        if self.tracking_uri_has_literal_password():
            raise ValueError(
                "registry.tracking_uri carries a password written out: a deployment stores its "
                "parameters with it masked (***), and its runs could not connect. Write it as a "
                "reference that the worker expands, e.g. "
                "postgresql://user:${MLFLOW_DB_PASSWORD}@host/db, and set MLFLOW_DB_PASSWORD in "
                "the worker's environment (or leave it out and use PGPASSWORD or a .pgpass file)"
            )

    model_name: str = Field(default="modalops-fused", description="Registered model name.")
    artifact_location: str | None = Field(
        default=None,
        description="Where the experiment keeps artifacts; defaults to <store.uri>/mlflow.",
    )
    gate: PromotionGateConfig = Field(
        default_factory=PromotionGateConfig,
        description="Promotion gate used for every model name without its own entry in gates.",
    )
    gates: dict[str, PromotionGateConfig] = Field(
        default_factory=dict,
        description="Promotion gate per registered model name (overrides `gate`).",
    )
    force: bool = Field(
        default=False, description="Promote to champion even when the gate refuses (recorded)."
    )
    requested_by: str | None = Field(
        default=None, description="Who asked for a forced promotion (required with force)."
    )
    force_reason: str | None = Field(
        default=None, description="Why the promotion is forced (required with force)."
    )
    lock_timeout_s: float = Field(
        default=120.0, gt=0, description="How long to wait for another pipeline's promotion."
    )

    @model_validator(mode="after")
    def _check(self) -> RegistryConfig:
        if self.force and not (self.requested_by and self.force_reason):
            raise ValueError("force: true needs requested_by and force_reason (they are recorded)")
        return self

    def gate_for(self, model_name: str) -> PromotionGateConfig:
        """The gate configured for `model_name`, else the default gate."""
        return self.gates.get(model_name, self.gate)
