"""What counts as an absent payload, and serving inputs to binary payloads (stdlib + numpy only).

One definition for every stage: the codecs, the DataModule's presence bits, the validation
statistics and the pyfunc all ask `is_absent`, so a window the shards mark absent is absent
everywhere.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np


def is_absent(payload: Any) -> bool:
    """None, NaN (pandas' missing value), a zero-length payload, or blank text."""
    if payload is None:
        return True
    if isinstance(payload, float):
        return math.isnan(payload)
    if isinstance(payload, str):
        return not payload.strip()
    if isinstance(payload, np.ndarray):
        return payload.size == 0
    if isinstance(payload, (bytes, bytearray, memoryview, list, tuple)):
        return len(payload) == 0
    return False


def from_base64(text: str, what: str) -> bytes:
    """JSON callers (REST without a schema, hand-written requests) send binary as base64."""
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what}: text input is not base64 ({exc})") from None


def binary_payload(value: Any, what: str) -> bytes | None:
    """A file's bytes, or base64 text of them -> bytes; None when absent; ValueError otherwise."""
    if is_absent(value):
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return from_base64(value, what)
    raise ValueError(f"{what}: expected file bytes or base64 text, got {type(value).__name__}")
