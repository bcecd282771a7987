"""The training pipeline's one config model: every stage's section under one root."""

from __future__ import annotations

from pydantic import Field, model_validator

from modalops.config.align import AlignConfig
from modalops.config.base import Section
from modalops.config.dask import DaskConfig
from modalops.config.data import IngestConfig, StoreConfig
from modalops.config.evaluate import EvaluateConfig, RegistryConfig
from modalops.config.infer import InferenceConfig
from modalops.config.review import ReviewConfig
from modalops.config.train import TrainConfig
from modalops.config.validate import ValidateConfig


class ShardConfig(Section):
    """How aligned samples become WebDataset shards."""

    samples_per_shard: int = Field(default=256, ge=1, description="Samples per tar shard.")
    val_fraction: float = Field(
        default=0.15, gt=0, lt=1, description="Share of sessions for validation."
    )
    test_fraction: float = Field(default=0.2, gt=0, lt=1, description="Share of sessions for test.")
    seed: int = Field(default=13, description="Seed of the session-level split.")
    group_by: str | None = Field(
        default=None,
        description="Override: metadata column whose values never straddle two splits. Null: "
        "the dataset spec's subject (a person's sessions stay together, so no subject leaks "
        "from train into test), or each session on its own when the spec declares none. "
        "Sessions without a value are split individually.",
    )
    stratify_by: str | None = Field(
        default=None,
        description="Override: session metadata column the split is stratified by, so a rare "
        "value (e.g. an under-represented location) still reaches the test split. Null: the dataset "
        "spec's metadata.stratify (no stratification when it has none).",
    )

    @model_validator(mode="after")
    def _check(self) -> ShardConfig:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                "val_fraction + test_fraction leaves under 10% of sessions for training"
            )
        return self


class PipelineConfig(Section):
    """Configuration of the training pipeline (ingest → ... → register) and of the production
    loop's flows (batch inference, feedback), which read the same file."""

    name: str = Field(default="modalops-demo", description="Pipeline name, used in run names.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="Artifact store.")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Ingestion.")
    align: AlignConfig = Field(default_factory=AlignConfig, description="Alignment and windowing.")
    validation: ValidateConfig = Field(
        default_factory=ValidateConfig, description="Validation gate."
    )
    shard: ShardConfig = Field(default_factory=ShardConfig, description="Sharding and splits.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training.")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="Evaluation.")
    registry: RegistryConfig = Field(default_factory=RegistryConfig, description="Registration.")
    inference: InferenceConfig = Field(
        default_factory=InferenceConfig, description="Batch inference with the registered model."
    )
    review: ReviewConfig = Field(
        default_factory=ReviewConfig, description="Human review in Label Studio."
    )
    dask: DaskConfig = Field(
        default_factory=DaskConfig, description="Data stages on Dask workers (off by default)."
    )
