"""Text payloads (str) to hashed bag-of-words tensors [dim].

Self-contained on purpose: the served model decodes with this file, so it imports numpy, torch
and the standard library only.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import torch

from modalops.kinds.payloads import is_absent

_TOKEN = re.compile(r"[a-z0-9]+")


def shape(params: Any, window_s: float) -> tuple[int]:
    return (int(params.dim),)


def to_payload(value: Any) -> str:
    """Serving input (str, bytes, None) -> the stored payload: a str, "" when there is none."""
    if is_absent(value):
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    raise ValueError(f"text: expected a string, got {type(value).__name__}")


def decode(payload: Any, params: Any, window_s: float) -> torch.Tensor:
    """Text -> float32 [dim] log1p of a hashed bag of words (crc32, so identical across processes)."""
    dim = int(params.dim)
    out = torch.zeros(dim)
    text = to_payload(payload)
    for token in _TOKEN.findall(text.lower()):
        out[zlib.crc32(token.encode("utf-8")) % dim] += 1.0
    return torch.log1p(out)
