"""Config section for the data-validation gate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modalops.config.base import Section

Severity = Literal["fail", "warn"]


class ValidateConfig(Section):
    """Thresholds and severities of the great-expectations gate."""

    max_bad_fraction: float = Field(
        default=0.05, ge=0, le=1, description="Largest fraction of rejected samples before the gate fails."
    )
    min_class_fraction: float = Field(
        default=0.03, ge=0, le=1, description="Each class must make up at least this share of samples."
    )
    min_samples_per_subgroup: int = Field(
        default=20, ge=0, description="Each site / lighting / device subgroup needs this many samples."
    )
    min_completeness: float = Field(
        default=0.9, ge=0, le=1, description="Minimum share of samples with every modality present."
    )
    severity: dict[str, Severity] = Field(
        default_factory=dict,
        description="Per-check severity overrides, e.g. {min_samples_per_subgroup: warn}.",
    )
    fail_on_error: bool = Field(
        default=True, description="Stop the flow when a check with severity 'fail' fails."
    )
