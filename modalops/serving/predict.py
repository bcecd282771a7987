"""Raw stream payloads -> logits and probabilities of a trained classifier, decoded with its spec.

Shared by the evaluation and the served model, so both score exactly what training saw: every
payload goes through `train.inputs.raw_to_tensors` with the spec the model was trained on. Imports
torch only inside the functions: the pyfunc ships this module to consumers without modalops deps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _payloads(sample: Mapping[str, Any]) -> Mapping[str, Any]:
    """The stream payloads of a raw sample (`{"streams": {...}, ...}`) or of a bare mapping."""
    streams = sample.get("streams")
    return streams if isinstance(streams, Mapping) else sample


def predict_logits(
    model: Any, samples: Sequence[Mapping[str, Any]], batch_size: int = 64
) -> np.ndarray:
    """Logits [N, C] of a classifier (with `.spec`, `.streams`, `.window_s`) on raw samples."""
    import torch

    from modalops.train.inputs import raw_to_tensors

    n_classes = len(getattr(model, "labels", None) or [])
    chunks = []
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            decoded = [
                raw_to_tensors(_payloads(s), model.spec, model.window_s, wanted=model.streams)
                for s in samples[start : start + batch_size]
            ]
            inputs = {k: torch.stack([d[0][k] for d in decoded]) for k in decoded[0][0]}
            presence = torch.stack([d[1] for d in decoded])
            chunks.append(model(inputs, presence).float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, n_classes), dtype=np.float32)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_proba(
    model: Any, samples: Sequence[Mapping[str, Any]], batch_size: int = 64
) -> np.ndarray:
    """Class probabilities [N, C] (uncalibrated softmax) on raw samples."""
    if hasattr(model, "eval"):
        model.eval()
    logits = predict_logits(model, list(samples), batch_size)
    return softmax(logits) if len(logits) else logits.astype(np.float64)


__all__ = ["predict_logits", "predict_proba", "softmax"]
