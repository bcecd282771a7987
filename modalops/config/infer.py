"""Config sections for batch inference: which recordings, which model, and what goes to review."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from modalops.config.base import Section

SESSION_SELECTORS = ("new", "all", "unlabelled", "champion_test")


class VerificationConfig(Section):
    """Rules that decide which predicted windows a person reviews; every other one is accepted."""

    abstained: bool = Field(
        default=True,
        description="Route windows whose calibrated probability is under the abstention "
        "threshold chosen in the model's evaluation.",
    )
    missing_streams: Literal["required", "any", "none"] = Field(
        default="required",
        description="Route windows missing a stream: the spec's required streams, any stream, "
        "or never.",
    )
    weak_slices: bool = Field(
        default=True,
        description="Route windows from slices (metadata values) that the model's evaluation "
        "report flagged as worse than overall.",
    )
    least_confident_share: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Also route this share of each batch's least confident windows (a "
        "reviewer's budget), whatever the threshold: a well-calibrated model that rarely "
        "abstains still sends its most doubtful answers to a person. 0 turns it off.",
    )
    min_probability: dict[str, float] = Field(
        default_factory=dict,
        description="Per predicted class, the probability it needs to be accepted, e.g. "
        "{hazard: 0.9}: a costly class can demand more certainty than the threshold.",
    )
    requires_streams: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per predicted class, streams that must be present for it to be accepted, "
        "e.g. a class only one sensor can confirm.",
    )

    @field_validator("min_probability")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"probabilities must lie in [0, 1], got {bad}")
        return value


class InferenceConfig(Section):
    """Batch inference over new recordings of the same dataset spec, with the registered model."""

    raw_uri: str | None = Field(
        default=None,
        description="Raw recordings root to predict on; null: ingest.raw_uri (new sessions land "
        "in the dataset's own folder, so their reviews feed the next training run).",
    )
    sessions: str | list[str] = Field(
        default="new",
        description="Which sessions: new (not in the model's dataset version), all, unlabelled "
        "(no label table yet), champion_test (the model's held-out test sessions, to measure "
        "verification), or a list of session ids.",
    )
    alias: str = Field(default="champion", description="Registered model alias to load.")
    model_version: str | None = Field(
        default=None, description="A registered version to load instead of the alias."
    )
    batch_size: int = Field(default=64, ge=1, description="Windows per model call.")
    verification: VerificationConfig = Field(
        default_factory=VerificationConfig, description="What goes to human review."
    )

    @field_validator("sessions")
    @classmethod
    def _selector(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str) and value not in SESSION_SELECTORS:
            raise ValueError(
                f"sessions: {value!r} is not one of {list(SESSION_SELECTORS)} or a list of ids"
            )
        return value
