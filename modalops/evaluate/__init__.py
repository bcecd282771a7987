"""Held-out evaluation: metrics, scoring of the trained models, the report's data and its rendering."""

from modalops.evaluate.evaluation import (
    FUSED_ID,
    ModelOutputs,
    SplitTruth,
    build_report,
    drop_stream,
    evaluate_models,
    evaluation_slices,
    headline_metrics,
    predict_outputs,
    slice_table,
    truth_from_samples,
    write_report,
)
from modalops.evaluate.result import EvaluationReport

__all__ = [
    "FUSED_ID",
    "EvaluationReport",
    "ModelOutputs",
    "SplitTruth",
    "build_report",
    "drop_stream",
    "evaluate_models",
    "evaluation_slices",
    "headline_metrics",
    "predict_outputs",
    "slice_table",
    "truth_from_samples",
    "write_report",
]
