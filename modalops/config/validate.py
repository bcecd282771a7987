"""Config section for the data-validation gate: per-sample ranges, dataset gates, drift, balancing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from modalops.config.base import Section

Severity = Literal["fail", "warn"]

_MODALITIES = ("camera", "audio", "vibration", "notes")


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
        description="Each site / lighting / device subgroup needs this many samples.",
    )
    subgroup_cols: list[str] = Field(
        default_factory=lambda: ["site", "lighting", "camera_model", "microphone"],
        description="Metadata columns whose every value must reach min_samples_per_subgroup.",
    )
    min_completeness: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Minimum share of samples with every required modality present.",
    )
    required_modalities: list[str] = Field(
        default_factory=lambda: ["camera", "audio", "vibration"],
        description="Modalities a sample counts as complete with (notes are sparse by nature).",
    )
    # ---- camera -----------------------------------------------------------------------------
    image_size: tuple[int, int] = Field(
        default=(64, 64), description="Expected frame size (width, height) in pixels."
    )
    brightness_range: tuple[float, float] = Field(
        default=(0.02, 0.98),
        description="Allowed mean grey level of a frame, 0 = black, 1 = white.",
    )
    min_blur: float = Field(
        default=5.0,
        ge=0,
        description="Minimum variance of the Laplacian (grey 0-255); below it a frame is blank "
        "or badly out of focus.",
    )
    # ---- audio ------------------------------------------------------------------------------
    audio_rate: int = Field(default=16000, gt=0, description="Expected audio sample rate (Hz).")
    audio_duration_tolerance: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Allowed relative difference between a clip's duration and its window's.",
    )
    max_clip_fraction: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Largest share of audio samples at full scale (clipped) in one window.",
    )
    audio_rms_range: tuple[float, float] = Field(
        default=(1e-5, 0.7),
        description="Allowed RMS of a window's audio (full scale = 1); below the low end the "
        "microphone is dead.",
    )
    # ---- vibration --------------------------------------------------------------------------
    vibration_rate_hz: float = Field(
        default=100.0, gt=0, description="Expected telemetry rate (rows per second)."
    )
    vibration_rate_tolerance: float = Field(
        default=0.2,
        ge=0,
        lt=1,
        description="Allowed relative difference between a window's row rate and the expected rate.",
    )
    max_vibration_nan_fraction: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Largest share of NaN values in one window's telemetry.",
    )
    vibration_abs_max: float = Field(
        default=100.0,
        gt=0,
        description="Largest plausible |acceleration| reading; beyond it the sensor is faulty.",
    )
    flat_std: float = Field(
        default=1e-7,
        ge=0,
        description="A telemetry channel whose range (max - min) within a window is at or "
        "below this is flat-lined (a stuck sensor).",
    )
    # ---- notes ------------------------------------------------------------------------------
    max_text_len: int = Field(
        default=4000, ge=1, description="Longest plausible notes text of one window (chars)."
    )
    # ---- cross-modal ------------------------------------------------------------------------
    min_align_confidence: float = Field(
        default=3.0,
        ge=0,
        description="Samples whose session's alignment confidence (peak-to-sidelobe ratio) "
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
        "regression on cheap per-window features, out of fold by session, flags a window when "
        "another class is confidently predicted and its given label is not (confident "
        "learning). Flagged windows are rejected ('label_inconsistent') and count in the "
        "bad-sample fraction; the check's own row is 'label_consistency' (severity override "
        "as for any check). Skipped, with a passing row saying why, below "
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
    label_check_min_windows: int = Field(
        default=1000,
        ge=0,
        description="Fewest labelled windows the check runs on; below it the check is skipped "
        "(its model is too weak: on the demo, 6 sessions falsely flag 3-5% of clean windows, "
        "15 or more about 1%).",
    )
    label_check_modalities: list[str] = Field(
        default_factory=lambda: list(_MODALITIES),
        description="Modalities whose payloads feed the check's features.",
    )
    label_check_drop_from: Literal["train", "all"] = Field(
        default="train",
        description="Splits that lose the windows the label check flags. 'train': validation "
        "and test keep them, so no score is computed on a set a model-based filter curated "
        "(dropping the windows a model disagrees with flatters every model); 'all': dropped "
        "everywhere.",
    )
    # ---- catalog ----------------------------------------------------------------------------
    max_stream_nan_fraction: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Largest share of NaN values in one whole stream of the catalog.",
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
    drift_statistics: list[str] = Field(
        default_factory=lambda: [
            "brightness",
            "blur",
            "audio_rms",
            "audio_clip_fraction",
            "vib_std",
            "vib_nan_fraction",
            "text_len",
            "align_confidence",
            "label",
        ],
        description="Per-sample statistics compared with the reference ('label' compares the "
        "class distribution).",
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
    # modalops.balancing computes the same weights for the before/after report.

    @model_validator(mode="after")
    def _check(self) -> ValidateConfig:
        for name in ("required_modalities", "label_check_modalities"):
            unknown = [m for m in getattr(self, name) if m not in _MODALITIES]
            if unknown:
                raise ValueError(f"{name}: unknown {unknown}; expected {list(_MODALITIES)}")
        if not self.label_check_modalities:
            raise ValueError("label_check_modalities: empty; name at least one modality")
        for name in ("brightness_range", "audio_rms_range"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name}: low end {low} is above high end {high}")
        return self
