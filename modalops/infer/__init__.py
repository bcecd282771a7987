"""Batch inference with a registered model, and the verification that routes windows to review."""

from modalops.infer.batch import (
    BatchResult,
    batch_config,
    prediction_columns,
    run_batch,
    select_sessions,
)
from modalops.infer.champion import ModelNotFound, ServedModel, load_registered
from modalops.infer.verify import ACCEPT, REVIEW, route_windows

__all__ = [
    "ACCEPT",
    "REVIEW",
    "BatchResult",
    "batch_config",
    "ModelNotFound",
    "ServedModel",
    "load_registered",
    "prediction_columns",
    "route_windows",
    "run_batch",
    "select_sessions",
]
