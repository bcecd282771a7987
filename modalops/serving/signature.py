"""The served model's MLflow signature, generated from the dataset spec (never from constants)."""

from __future__ import annotations

from typing import Any


def input_colspec(name: str, kind: str) -> Any:
    """One input column: binary payloads as bytes, text as a string, time series as rows."""
    from mlflow.types.schema import Array, ColSpec, DataType

    if kind == "text":
        return ColSpec(DataType.string, name, required=False)
    if kind == "timeseries":
        # a list of [channel values] rows: JSON-friendly for REST, unlike .npy bytes
        return ColSpec(Array(Array(DataType.double)), name, required=False)
    return ColSpec(DataType.binary, name, required=False)


def model_signature(spec: Any):
    """One optional input column per spec stream -> label, probability, abstained,
    abstain_reason, input_issues, missing_streams, prob_<class> (see pyfunc.outputs_frame)."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, DataType, ParamSchema, ParamSpec, Schema

    from modalops.serving.pyfunc import SPEC_PARAM

    inputs = Schema([input_colspec(name, s.kind) for name, s in spec.streams.items()])
    outputs = Schema(
        [
            ColSpec(DataType.string, "label"),
            ColSpec(DataType.double, "probability"),
            ColSpec(DataType.boolean, "abstained"),
            ColSpec(DataType.string, "abstain_reason"),
            ColSpec(DataType.string, "input_issues"),
            ColSpec(DataType.string, "missing_streams"),
            *[ColSpec(DataType.double, f"prob_{name}") for name in spec.labels.classes],
        ]
    )
    # the caller may send the spec it decodes with; a mismatch is refused (check_spec)
    params = ParamSchema([ParamSpec(SPEC_PARAM, DataType.string, "")])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


__all__ = ["input_colspec", "model_signature"]
