"""Image statistics shared by the image and video kinds: perceptual hash, sharpness, thumbnails."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from modalops.kinds.payloads import is_absent

_PHASH_SIZE = 32  # DCT input size; the hash keeps the 8x8 lowest frequencies (Zauner 2010)
THUMB = 8  # label-check thumbnail side: JPEG decodes at 1/8 scale for free (libjpeg DCT scaling)
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    mat = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    mat[0] /= np.sqrt(2.0)
    return mat


_DCT = _dct_matrix(_PHASH_SIZE)[:8]  # only the 8 lowest frequency rows are ever used
_BITS = (1 << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)


def phash(grey: np.ndarray) -> int:
    """64-bit DCT perceptual hash of a grey image (any size; resized to 32x32 first)."""
    small = np.asarray(
        Image.fromarray(grey.astype(np.uint8)).resize((_PHASH_SIZE, _PHASH_SIZE), Image.BILINEAR),
        dtype=np.float64,
    )
    low = (_DCT @ small @ _DCT.T).ravel()
    # Median without the DC term, which only measures overall brightness.
    bits = low > np.median(low[1:])
    return int(np.bitwise_or.reduce(_BITS[bits])) if bits.any() else 0


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: near zero for blank or heavily blurred frames."""
    g = grey.astype(np.float32)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var()) if lap.size else 0.0


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of uint64 hashes (broadcasting)."""
    x = np.bitwise_xor(a.astype(np.uint64), b.astype(np.uint64))
    return np.bitwise_count(x).astype(np.int64)


def _one(data: object) -> tuple:
    """(decodable, width, height, brightness, blur, phash) of one encoded image; NaN when absent."""
    if is_absent(data):
        return (None, np.nan, np.nan, np.nan, np.nan, None)
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            img.draft("L", img.size)  # JPEG can decode straight to grey: cheaper than RGB
            grey = np.asarray(img.convert("L"))
    except _DECODE_ERRORS:
        return (False, np.nan, np.nan, np.nan, np.nan, None)
    h, w = grey.shape
    return (True, w, h, float(grey.mean()) / 255.0, laplacian_variance(grey), phash(grey))


IMAGE_STATS = {
    "decodable": "boolean",
    "width": "float64",
    "height": "float64",
    "brightness": "float64",
    "blur": "float64",
    "phash": "UInt64",
    "sha1": "string",
}


def image_window_stats(payloads: list) -> pd.DataFrame:
    """One row per encoded frame: decodable, width, height, brightness, blur, phash, and sha1
    (exact identity: a copied file, beside the perceptual hash: a similar picture)."""
    rows = [_one(v) for v in payloads]
    frame = pd.DataFrame(rows, columns=list(IMAGE_STATS)[:-1])
    out = pd.DataFrame(index=range(len(payloads)))
    for name in list(IMAGE_STATS)[:-1]:
        out[name] = (
            frame[name].astype(IMAGE_STATS[name])
            if len(frame)
            else pd.Series(dtype=IMAGE_STATS[name])
        )
    out["sha1"] = pd.array(
        [None if is_absent(v) else hashlib.sha1(bytes(v)).hexdigest() for v in payloads],
        dtype="string",
    )
    return out


def thumbnail(data: object) -> np.ndarray | None:
    """8x8 RGB thumbnail in [0, 1] (192 values), or None when absent or undecodable."""
    if is_absent(data):
        return None
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            img.draft("RGB", (THUMB, THUMB))
            thumb = img.convert("RGB")
            if thumb.size != (THUMB, THUMB):
                thumb = thumb.resize((THUMB, THUMB), Image.BILINEAR)
            return np.asarray(thumb, dtype=np.float32).ravel() / 255.0
    except _DECODE_ERRORS:
        return None


def change_map(block: np.ndarray, present: np.ndarray, session_median) -> list[np.ndarray]:
    """Per thumbnail cell, how far the frame is from its session's median frame (absolute, and
    in units of that cell's median change, so a noisy low-light sensor is not always "changed")."""
    n = len(block)
    diff = block - session_median(block)
    change = np.sqrt((diff.reshape(n, THUMB * THUMB, 3) ** 2).sum(axis=2))
    typical = session_median(change)
    return [change, np.log1p(change / (typical + 1e-3)) * present[:, None]]
