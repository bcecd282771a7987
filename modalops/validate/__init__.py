"""The validate stage: great-expectations suites derived from the dataset spec, dataset-level
checks, the label check, drift, and the two gates (before and after the split)."""

from modalops.kinds.image.stats import hamming, phash
from modalops.validate.drift import drift_checks
from modalops.validate.evidence import SampleEvidence, evidence_from_parts, merge_evidence
from modalops.validate.gate import (
    gate_splits,
    reject_samples,
    split_label_rejections,
    split_leak_checks,
    validate_dataset,
    with_split_checks,
)
from modalops.validate.result import (
    CheckResult,
    Rule,
    ValidationGateError,
    ValidationResult,
    raise_for_gate,
)
from modalops.validate.stats import sample_stats, summarize_for_reference

__all__ = [
    "CheckResult",
    "Rule",
    "SampleEvidence",
    "ValidationGateError",
    "ValidationResult",
    "drift_checks",
    "evidence_from_parts",
    "gate_splits",
    "hamming",
    "merge_evidence",
    "phash",
    "raise_for_gate",
    "reject_samples",
    "sample_stats",
    "split_label_rejections",
    "split_leak_checks",
    "summarize_for_reference",
    "validate_dataset",
    "with_split_checks",
]
