"""Sync cue of image streams: region brightness per frame (roi_brightness) and frame differences."""

from __future__ import annotations

import io

import numpy as np

from modalops.dataset.spec import CueSpec
from modalops.kinds.base import Envelope, ReadBytes
from modalops.kinds.envelopes import CueError, brightness_envelope, frame_cues, roi_level


def decode_image(data: bytes) -> np.ndarray:
    """Encoded JPEG/PNG bytes -> uint8 array (H, W) for grey or (H, W, 3) for colour."""
    from PIL import Image

    # only the two formats frames come in: Pillow then probes no other plugin
    with Image.open(io.BytesIO(data), formats=("JPEG", "PNG")) as img:
        if img.mode in ("L", "RGB"):  # already what is wanted: no converted copy
            return np.asarray(img)
        return np.asarray(img.convert("L") if img.mode == "1" else img.convert("RGB"))


def _decoded(stream, read_bytes: ReadBytes, skip: frozenset[str]):
    """(time, decoded frame or None) of every frame not in `skip`, one decode each."""
    for key, t in zip(stream.files, stream.times, strict=True):
        if key in skip:
            continue
        try:
            yield t, decode_image(read_bytes(key))
        except Exception:  # noqa: BLE001 - a corrupt or missing frame is skipped, the rest go on
            yield t, None


def envelope(
    stream, cue: CueSpec, rate: float, read_bytes: ReadBytes, skip: frozenset[str] = frozenset()
) -> Envelope:
    """roi_brightness of every frame not in `skip`, interpolated to the common grid."""
    if cue.kind != "roi_brightness":
        raise CueError(f"image streams provide roi_brightness, not {cue.kind}")
    got = [(t, np.nan if f is None else roi_level(f, cue.roi, cue.channel))
           for t, f in _decoded(stream, read_bytes, skip)]  # fmt: skip
    times = np.array([g[0] for g in got], dtype=np.float64)
    return brightness_envelope(times, np.array([g[1] for g in got]), cue, rate)


def candidates(stream, cue: CueSpec, rate: float, read_bytes: ReadBytes,
               skip: frozenset[str] = frozenset()) -> dict[str, Envelope]:  # fmt: skip
    """Brightness `edges` and `level`, and frame-difference `motion`, from one decode per frame."""
    if cue.kind != "roi_brightness":
        raise CueError(f"image streams provide roi_brightness, not {cue.kind}")
    return frame_cues(_decoded(stream, read_bytes, skip), cue, rate)
