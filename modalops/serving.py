"""The fused model as an MLflow pyfunc: raw modality columns in, label/probability/abstained out.

The pyfunc ships with the `modalops` package as code (`code_paths`) and decodes inputs with
`modalops.preprocess.raw_to_tensors`, the function the DataModule uses, so there is no
train/serve skew. At load time it imports only mlflow, torch, numpy, pandas and PIL.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

INPUT_COLUMNS = ("camera", "audio", "vibration", "notes")
DEFAULT_LOADER = "modalops.models:load_classifier"
SERVING_CONFIG_ARTIFACT = "serving_config"
CHECKPOINT_ARTIFACT = "checkpoint"


def serving_config(
    temperature: float,
    threshold: float,
    labels: tuple[str, ...] | list[str],
    loader: str = DEFAULT_LOADER,
    batch_size: int = 64,
) -> dict[str, Any]:
    """The JSON document logged as the `serving_config` artifact next to the checkpoint."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(
            f"serving config: temperature must be a positive number, got {temperature}"
        )
    return {
        "temperature": float(temperature),
        "abstention_threshold": float(threshold),
        "labels": list(labels),
        "loader": loader,
        "batch_size": int(batch_size),
    }


def _load_callable(spec: str):
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(
            f"serving config: loader {spec!r} must look like 'package.module:function'"
        )
    return getattr(importlib.import_module(module), name)


def _binary(value: Any, column: str, row: int) -> bytes | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        # JSON callers (REST without a schema, hand-written requests) send binary as base64.
        if not value:
            return None
        try:
            return base64.b64decode(value, validate=False)
        except (binascii.Error, ValueError):
            raise ValueError(f"input row {row}, column {column}: string is not base64") from None
    raise ValueError(
        f"input row {row}, column {column}: expected bytes (or base64 text), got {type(value).__name__}"
    )


def _vibration(value: Any, row: int) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)  # .npy bytes, decoded by preprocess
    if isinstance(value, str):
        return _binary(value, "vibration", row)
    return value  # (n, 3) array or list of rows


def rows_to_raw(model_input: pd.DataFrame | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Input table → one raw dict per row (missing columns or empty cells are absent modalities)."""
    if isinstance(model_input, Mapping):
        model_input = pd.DataFrame(dict(model_input))
    if not isinstance(model_input, pd.DataFrame):
        raise ValueError(
            f"model input: expected a DataFrame with columns {list(INPUT_COLUMNS)}, "
            f"got {type(model_input).__name__}"
        )
    unknown = [c for c in model_input.columns if c not in INPUT_COLUMNS]
    if unknown:
        raise ValueError(f"model input: unknown columns {unknown}; expected {list(INPUT_COLUMNS)}")
    raws = []
    for i, rec in enumerate(model_input.to_dict("records")):
        notes = rec.get("notes")
        raws.append(
            {
                "camera": _binary(rec.get("camera"), "camera", i),
                "audio": _binary(rec.get("audio"), "audio", i),
                "vibration": _vibration(rec.get("vibration"), i),
                "notes": None if notes is None or (isinstance(notes, float)) else str(notes),
            }
        )
    return raws


def predict_logits(model: Any, raws: list[Mapping[str, Any]], batch_size: int = 64) -> np.ndarray:
    """Logits [N, C] of a MultimodalClassifier-like model on raw samples."""
    import torch

    from modalops.preprocess import raw_to_tensors

    chunks = []
    with torch.no_grad():
        for start in range(0, len(raws), batch_size):
            decoded = [raw_to_tensors(r) for r in raws[start : start + batch_size]]
            inputs = {k: torch.stack([d[0][k] for d in decoded]) for k in decoded[0][0]}
            presence = torch.stack([d[1] for d in decoded])
            chunks.append(model(inputs, presence).float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def outputs_frame(
    logits: np.ndarray, labels: list[str], temperature: float, threshold: float
) -> pd.DataFrame:
    """Calibrated probabilities → label, probability, abstained and one column per class."""
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(axis=1, keepdims=True)
    top = probs.argmax(axis=1)
    conf = probs[np.arange(len(top)), top]
    out = pd.DataFrame(
        {
            "label": [labels[i] for i in top],
            "probability": conf,
            "abstained": conf < threshold,
        }
    )
    for j, name in enumerate(labels):
        out[f"prob_{name}"] = probs[:, j]
    return out


class MultimodalPyfunc(mlflow.pyfunc.PythonModel):
    """Loads the checkpoint and serving config artifacts; predicts calibrated labels with abstention."""

    def load_context(self, context) -> None:
        cfg_path = Path(context.artifacts[SERVING_CONFIG_ARTIFACT])
        try:
            self.config = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{cfg_path}: unreadable serving config ({exc})") from None
        loader = _load_callable(self.config.get("loader", DEFAULT_LOADER))
        self.model, self.meta = loader(context.artifacts[CHECKPOINT_ARTIFACT])
        self.model.eval()
        self.labels = list(self.config["labels"])

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        raws = rows_to_raw(model_input)
        if not raws:
            return outputs_frame(np.zeros((0, len(self.labels))), self.labels, 1.0, 0.0)
        logits = predict_logits(self.model, raws, int(self.config.get("batch_size", 64)))
        return outputs_frame(
            logits,
            self.labels,
            float(self.config["temperature"]),
            float(self.config["abstention_threshold"]),
        )


def model_signature():
    """Binary camera/audio, (n, 3) telemetry array, note text → label/probability/abstained."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, DataType, Schema

    inputs = Schema(
        [
            ColSpec(DataType.binary, "camera", required=False),
            ColSpec(DataType.binary, "audio", required=False),
            ColSpec(Array(Array(DataType.double)), "vibration", required=False),
            ColSpec(DataType.string, "notes", required=False),
        ]
    )
    from modalops.schema import LABELS

    outputs = Schema(
        [
            ColSpec(DataType.string, "label"),
            ColSpec(DataType.double, "probability"),
            ColSpec(DataType.boolean, "abstained"),
            *[ColSpec(DataType.double, f"prob_{name}") for name in LABELS],
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def to_input_frame(raws: list[Mapping[str, Any]]) -> pd.DataFrame:
    """Raw samples (as from shards.iter_raw_samples) → the pyfunc's input table.

    Telemetry travels as a list of [ax, ay, az] rows (JSON-friendly for REST); missing
    modalities are None.
    """
    import io

    rows = []
    for r in raws:
        vib = r.get("vibration")
        if isinstance(vib, (bytes, bytearray)) and len(vib):
            vib = np.load(io.BytesIO(bytes(vib)), allow_pickle=False)
        if vib is not None and not isinstance(vib, (bytes, bytearray)):
            vib = np.asarray(vib, dtype=np.float64).tolist() or None
        else:
            vib = None
        rows.append(
            {
                "camera": bytes(r["camera"]) if r.get("camera") else None,
                "audio": bytes(r["audio"]) if r.get("audio") else None,
                "vibration": vib,
                "notes": r.get("notes") or "",
            }
        )
    return pd.DataFrame(rows, columns=list(INPUT_COLUMNS))


def pip_requirements() -> list[str]:
    """Pinned requirements of a consumer: mlflow, torch and what they bring anyway."""
    import PIL
    import torch

    return [
        f"mlflow=={mlflow.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
        f"pillow=={PIL.__version__}",
    ]


def package_dir() -> str:
    """The `modalops` package directory, shipped with the model as code."""
    import modalops

    return str(Path(modalops.__file__).parent)
