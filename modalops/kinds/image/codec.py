"""Image payloads (JPEG/PNG bytes) to model tensors [C, H, W] sized from the stream's params.

Self-contained on purpose: the served model decodes with this file, so it imports numpy, torch,
PIL and the standard library only.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from modalops.kinds.payloads import binary_payload


def shape(params: Any, window_s: float) -> tuple[int, int, int]:
    """(channels, height, width) the model sees; the window length does not matter for a frame."""
    return (int(params.channels), int(params.height), int(params.width))


def to_payload(value: Any) -> bytes | None:
    """Serving input (the file's bytes, or base64 text of them) -> the stored payload; None if absent."""
    return binary_payload(value, "image")


def decode(payload: Any, params: Any, window_s: float) -> torch.Tensor:
    """JPEG/PNG bytes -> float32 [C, H, W] in [0, 1] (grey or RGB, resized); zeros when absent."""
    channels, height, width = shape(params, window_s)
    data = to_payload(payload)
    if data is None:
        return torch.zeros(channels, height, width)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # PIL decodes lazily; force it here so corrupt bytes fail inside the try
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (width, height):
                img = img.resize((width, height), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"image: payload is not a decodable image ({exc})") from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # grey has no channel axis
    return torch.from_numpy(arr.copy())
