"""What makes two registrations the same model: the registration fingerprint and its parts.

A checkpoint's bytes are not its model: `train.models.save_checkpoint` also stores `meta`, the
training run's record, whose wall-clock `seconds` and `samples_per_s` differ between two
trainings of bit-identical weights. Two pipelines started at once with the same input and
config both trained, got the same weights, and registered versions 1 and 2 (issue 23);
`model_digest` hashes what the served model is made of and leaves `meta` out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FINGERPRINT_TAG = "modalops.fingerprint"

# save_checkpoint's record of the training run, not part of the model (see the docstring)
RUN_RECORD_KEY = "meta"


def registration_fingerprint(
    dataset_version: str, model_sha256: str, config: Mapping[str, Any]
) -> str:
    """What makes two registrations the same: the dataset version, the model (`model_digest`
    of the fused checkpoint) and the resolved pipeline config (its digest)."""
    config_digest = hashlib.sha256(
        json.dumps(config, sort_keys=True, default=str).encode()
    ).hexdigest()
    text = f"{dataset_version}|{model_sha256}|{config_digest}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def model_digest(checkpoint: Path) -> str:
    """sha256 of the model in a `save_checkpoint` file: weights (dtype, shape, bytes),
    architecture config, labels, streams and window, in a fixed order; not `meta`.

    A file that is not such a checkpoint (a dict with a `state_dict`) is digested as bytes."""
    import torch

    try:
        state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    except Exception:  # torch raises several types for files it cannot read
        state = None
    if not isinstance(state, dict) or "state_dict" not in state:
        return hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in state.items() if k != RUN_RECORD_KEY})
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    """`value` into `digest`, each part length-prefixed so no two values feed the same bytes."""
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        parts = [f"tensor {t.dtype} {tuple(t.shape)}".encode(), raw]
    elif isinstance(value, Mapping):
        digest.update(f"map {len(value)};".encode())
        for key in sorted(value, key=str):
            _feed(digest, str(key))
            _feed(digest, value[key])
        return
    elif isinstance(value, (list, tuple)):
        digest.update(f"list {len(value)};".encode())
        for item in value:
            _feed(digest, item)
        return
    else:
        parts = [json.dumps(value, sort_keys=True, default=str).encode()]
    for part in parts:
        digest.update(f"{len(part)}:".encode() + part)
