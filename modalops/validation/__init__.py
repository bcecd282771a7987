"""The validate stage: great-expectations suites, dataset-level checks, drift and the gate."""

from modalops.validation.drift import drift_checks
from modalops.validation.gate import (
    CheckResult,
    ValidationGateError,
    ValidationResult,
    raise_for_gate,
    split_label_rejections,
    split_leak_checks,
    validate_dataset,
    with_split_checks,
)
from modalops.validation.stats import phash, sample_stats, summarize_for_reference

__all__ = [
    "CheckResult",
    "ValidationGateError",
    "ValidationResult",
    "drift_checks",
    "phash",
    "raise_for_gate",
    "sample_stats",
    "split_label_rejections",
    "split_leak_checks",
    "summarize_for_reference",
    "validate_dataset",
    "with_split_checks",
]
