"""Config section for the data-validation gate: dataset-level thresholds, label check, drift, severity.

Per-window thresholds of a stream (brightness, sample rate, NaN share, ...) belong to its kind and
are set per stream in the dataset spec's `checks:` (modalops/kinds/<kind>/params.py `Checks`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from modalops.config.base import Section

Severity = Literal["fail", "warn"]


class ValidateConfig(Section):
    """Thresholds and severities of the great-expectations gate."""

    max_bad_fraction: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Largest fraction of rejected samples before the gate fails.",
    )
    min_class_fraction: float = Field(
        default=0.03,
        ge=0,
        le=1,
        description="Each class must make up at least this share of samples.",
    )
    min_samples_per_subgroup: int = Field(
        default=20,
        ge=0,
        description="Each value of a subgroup column (subgroup_cols) needs this many samples.",
    )
    subgroup_cols: list[str] | None = Field(
        default=None,
        description="Metadata columns whose every value must reach min_samples_per_subgroup; "
        "null: the dataset spec's metadata.slices.",
    )
    min_completeness: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Minimum share of samples with every required stream present.",
    )
    required_streams: list[str] | None = Field(
        default=None,
        description="Streams a sample counts as complete with; null: the dataset spec's "
        "required streams (those not marked required: false).",
    )
    # ---- cross-modal ------------------------------------------------------------------------
    min_align_confidence: float = Field(
        default=3.0,
        ge=0,
        description="Samples whose session's alignment confidence (align.min_confidence's "
        "measure) "
        "is below this are rejected; NaN (nothing estimated) is not judged.",
    )
    max_abs_drift_ppm: float = Field(
        default=2000.0,
        gt=0,
        description="Largest plausible |clock drift| in the alignment report (ppm).",
    )
    # ---- label consistency (confident learning; docs/validation.md) -------------------------
    label_check: bool = Field(
        default=True,
        description="Flag windows whose label their own signals contradict (on by default: "
        "no per-file check sees a label that is merely wrong): a logistic "
        "regression on cheap per-window features, out of fold by session; cleanlab's label "
        "issues whose other class the classifier is sure of (label_check_sure_p) are flagged, "
        "rejected ('label_inconsistent') and count in the bad-sample fraction; the check's own "
        "row 'label_consistency' fails when the estimated noise rate (flags among the windows "
        "the classifier is sure of) exceeds max_bad_fraction (severity override as for any "
        "check). Skipped, with a passing row saying why, below "
        "label_check_min_windows.",
    )
    label_check_folds: int = Field(
        default=5,
        ge=2,
        le=20,
        description="Folds of the out-of-fold predictions, split by session (fewer when there "
        "are fewer sessions).",
    )
    label_check_rounds: int = Field(
        default=2,
        ge=1,
        le=5,
        description="Rounds of the check; each round after the first retrains without the "
        "windows the previous one flagged (fewer false flags).",
    )
    label_check_c: float = Field(
        default=0.1,
        gt=0,
        description="Inverse L2 strength of the logistic regression (smaller: simpler model, "
        "fewer but surer flags).",
    )
    label_check_sure_p: float = Field(
        # measured (benchmarks/label_gate.py, 2 rounds): 0.85 keeps clean labels at 0.6-2.0%
        # flagged on the demo and two real sets and finds 71-94% of 10% swaps; 0.9 missed 35%
        # of the swaps on a wrist-sensor set, 0.8 flagged 2.1% of clean spoken digits
        default=0.85,
        gt=0,
        lt=1,
        description="Probability of another class at or above which a label issue counts as "
        "one the classifier is sure of (flagged, and counted in the noise rate the gate reads).",
    )
    label_check_min_windows: int = Field(
        default=1000,
        ge=0,
        description="Fewest labelled windows the check runs on; below it the check is skipped "
        "(its model is too weak: on the demo, 6 sessions falsely flag 3-5% of clean windows, "
        "15 or more about 1%).",
    )
    label_check_max_fit_windows: int = Field(
        default=50_000,
        ge=100,
        description="Most windows one fold's model trains on; a fold with more trains on a "
        "random subsample of that many (the same on a rerun). Every window is still judged. "
        "Bounds what the fits add at scale: about 210 MB at the default for 300 float32 "
        "features a window, the demo's four streams (benchmarks/label_check_memory.py).",
    )
    label_check_streams: list[str] | None = Field(
        default=None,
        description="Streams whose payloads feed the check's features; null: every stream of "
        "the dataset spec.",
    )
    label_check_drop_from: Literal["train", "all"] = Field(
        default="train",
        description="Splits that lose the windows the label check flags. 'train': validation "
        "and test keep them, so no score is computed on a set a model-based filter curated "
        "(dropping the windows a model disagrees with flatters every model); 'all': dropped "
        "everywhere.",
    )
    # ---- splits -----------------------------------------------------------------------------
    near_duplicate_hamming: int = Field(
        default=4,
        ge=0,
        le=16,
        description="Two frames whose 64-bit perceptual hashes differ in at most this many "
        "bits are near-duplicates.",
    )
    max_near_duplicate_fraction: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Largest share of val/test frames allowed a near-duplicate in another split.",
    )
    # ---- drift ------------------------------------------------------------------------------
    drift_metric: Literal["psi", "ks"] = Field(
        default="psi",
        description="Population stability index or Kolmogorov-Smirnov distance against the "
        "champion's dataset summary.",
    )
    drift_threshold: float = Field(
        default=0.25,
        gt=0,
        description="Drift value above which a statistic has drifted (PSI 0.25 is the usual "
        "'significant shift' mark; for KS use e.g. 0.2).",
    )
    drift_statistics: list[str] | None = Field(
        default=None,
        description="Statistics compared with the reference, as `<stream>__<stat>` (see each "
        "kind's DRIFT_STATS), 'align_confidence' or 'label' (the class distribution); null: "
        "every stream's kind's DRIFT_STATS plus align_confidence and label.",
    )
    # ---- policy -----------------------------------------------------------------------------
    severity: dict[str, Severity] = Field(
        default_factory=dict,
        description="Per-check severity overrides, e.g. {min_samples_per_subgroup: warn}; a "
        "key may also be a prefix ending in '*', e.g. {drift_*: fail}.",
    )
    fail_on_error: bool = Field(
        default=True, description="Stop the flow when a check with severity 'fail' fails."
    )
    # Balancing is chosen in `train.balancing` (TrainConfig), the trainer being its consumer;
    # modalops.train.balancing computes the same weights for the before/after report.

    @model_validator(mode="after")
    def _check(self) -> ValidateConfig:
        for name in ("required_streams", "label_check_streams", "subgroup_cols"):
            value = getattr(self, name)
            if value is not None and len(set(value)) != len(value):
                raise ValueError(f"{name}: duplicated names in {value}")
        if self.label_check_streams is not None and not self.label_check_streams:
            raise ValueError("label_check_streams: empty; name at least one stream (or null: all)")
        return self
