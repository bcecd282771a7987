"""Sync cue of image streams: mean brightness of a region per frame (roi_brightness)."""

from __future__ import annotations

import io

import numpy as np

from modalops.dataset.spec import CueSpec
from modalops.kinds.base import Envelope, ReadBytes
from modalops.kinds.envelopes import CueError, brightness_envelope, roi_level


def decode_image(data: bytes) -> np.ndarray:
    """Encoded JPEG/PNG bytes -> uint8 array (H, W) for grey or (H, W, 3) for colour."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L") if img.mode in ("L", "1") else img.convert("RGB"))


def envelope(
    stream, cue: CueSpec, rate: float, read_bytes: ReadBytes, skip: frozenset[str] = frozenset()
) -> Envelope:
    """roi_brightness of every frame not in `skip`, interpolated to the common grid."""
    if cue.kind != "roi_brightness":
        raise CueError(f"image streams provide roi_brightness, not {cue.kind}")
    keep = np.array([f not in skip for f in stream.files], dtype=bool)
    levels = np.full(int(keep.sum()), np.nan)
    for i, key in enumerate(f for f, k in zip(stream.files, keep, strict=True) if k):
        try:  # one decode per frame: decoding dominates, not the loop
            levels[i] = roi_level(decode_image(read_bytes(key)), cue.roi, cue.channel)
        except Exception:  # noqa: BLE001 - a corrupt or missing frame is skipped, the rest go on
            continue
    return brightness_envelope(stream.times[keep], levels, cue, rate)
