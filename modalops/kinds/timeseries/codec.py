"""Time-series payloads (.npy bytes of float32 (n, C)) to model tensors [C, rows].

Self-contained on purpose: the served model decodes with this file, so it imports numpy, torch
and the standard library only.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from modalops.kinds.payloads import from_base64, is_absent


def shape(params: Any, window_s: float) -> tuple[int, int]:
    """(channels, rows): one row per sample of the declared rate over the window."""
    return (len(params.channels), max(1, round(float(params.sample_rate) * float(window_s))))


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, str):
        value = from_base64(value, "timeseries")
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return np.load(io.BytesIO(bytes(value)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"timeseries: payload is not a readable .npy array ({exc})") from None
    try:
        arr = np.asarray(value)
        if arr.dtype == object:  # e.g. a pandas/arrow cell holding a list of row arrays
            arr = np.stack([np.asarray(r, dtype=np.float32) for r in arr])
        return arr.astype(np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"timeseries: cannot read the input as numbers ({exc})") from None


def to_payload(value: Any) -> bytes | None:
    """Serving input ((n, C) array or nested list, .npy bytes, or base64 of them) -> .npy bytes."""
    if is_absent(value):
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    buf = io.BytesIO()
    np.save(buf, _as_array(value).astype(np.float32), allow_pickle=False)
    return buf.getvalue()


def resample_rows(x: np.ndarray, n_out: int) -> np.ndarray:
    """Linear interpolation of the rows of `x` ((n,) or (n, C)) onto `n_out` evenly spaced points;
    the audio codec resamples clips with it too."""
    if len(x) == n_out:
        return x
    if len(x) == 1:
        return np.repeat(x, n_out, axis=0)
    src = np.linspace(0.0, 1.0, len(x))
    dst = np.linspace(0.0, 1.0, n_out)
    if x.ndim == 1:
        return np.interp(dst, src, x).astype(np.float32)
    return np.stack([np.interp(dst, src, x[:, j]) for j in range(x.shape[1])], axis=1).astype(
        np.float32
    )


def decode(payload: Any, params: Any, window_s: float) -> torch.Tensor:
    """.npy bytes or an (n, C) array/list -> float32 [C, rows]; zeros when absent.

    NaN/inf become 0 (validation bounds their share); any n >= 1 is linearly resampled to the
    rows one window holds at the declared rate, so slight rate differences between devices vanish.
    """
    n_channels, rows = shape(params, window_s)
    if is_absent(payload):
        return torch.zeros(n_channels, rows)
    arr = _as_array(payload)
    if arr.ndim != 2 or arr.shape[1] != n_channels:
        raise ValueError(
            f"timeseries: expected an (n, {n_channels}) array of channels "
            f"{list(params.channels)}, got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        return torch.zeros(n_channels, rows)
    arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return torch.from_numpy(resample_rows(arr, rows).T.copy())
