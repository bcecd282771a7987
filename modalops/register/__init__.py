"""Model registration: MLflow logging (with the dataset spec), the promotion gate and its locks.

The pipeline's parent/child run layout lives in `modalops.register.tracking`.
"""

from modalops.register.registry import (
    CHALLENGER,
    CHAMPION,
    GateCheck,
    GateScores,
    PromotionDecision,
    PromotionLockTimeout,
    RegistrationResult,
    RescoringSet,
    absolute_tracking_uri,
    check_gate,
    current_champion,
    dataset_input_of,
    flatten_config,
    log_and_register,
    promote_if_better,
    promotion_lock,
    register_pipeline_model,
    score_model_uri,
    score_predictions,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "GateCheck",
    "GateScores",
    "PromotionDecision",
    "PromotionLockTimeout",
    "RegistrationResult",
    "RescoringSet",
    "absolute_tracking_uri",
    "check_gate",
    "current_champion",
    "dataset_input_of",
    "flatten_config",
    "log_and_register",
    "promote_if_better",
    "promotion_lock",
    "register_pipeline_model",
    "score_model_uri",
    "score_predictions",
]
