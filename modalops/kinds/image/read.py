"""Image streams: a frame index table (time + file columns) and the JPEG/PNG frames it lists."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from modalops.dataset.errors import RawDataError
from modalops.dataset.layout import TIME_SCALE, check_times, read_table
from modalops.kinds.base import IngestedStream, Stream, StreamSource
from modalops.kinds.timing import median_rate, sampled_span

FETCH_THREADS = 8  # frame fetches are I/O-bound (S3 round trips), decoding is cheap


@dataclass
class ImageStream(Stream):
    """Frame times (device clock, seconds) and each frame's object key."""

    times: np.ndarray
    files: list[str]
    params: Any = None
    kind: str = "image"

    def span(self) -> tuple[float, float] | None:
        return sampled_span(self.times)


def _parse_index(data: bytes, src: StreamSource) -> ImageStream:
    p = src.params
    uri = src.uri()
    df = read_table(data, uri)
    missing = [c for c in (p.time_column, p.file_column) if c not in df.columns]
    if missing:
        raise RawDataError(
            uri, f"frame index needs columns {[p.time_column, p.file_column]}; missing {missing}"
        )
    try:
        times = df[p.time_column].to_numpy(dtype=np.float64) * TIME_SCALE[p.time_unit]
    except (ValueError, TypeError) as exc:
        raise RawDataError(
            uri, f"column {p.time_column!r}: times must be numbers ({exc})"
        ) from None
    check_times(uri, times, "frame index")
    files = [src.sibling(f) for f in df[p.file_column].astype(str)]
    return ImageStream(times=times, files=files, params=p)


def read(src: StreamSource) -> ImageStream:
    """The frame index of one session (frames are read when windows or cues need them)."""
    return _parse_index(src.get(), src)


def check_frame(
    data: bytes | None, formats: list[str]
) -> tuple[tuple[int, int, int] | None, str | None]:
    """((width, height, channels) of a decodable frame in an accepted format, None) or (None, why)."""
    if data is None:
        return None, "file is missing"
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in formats:
                return None, f"not an accepted image format {formats} (Pillow sees {img.format})"
            img.load()  # decoding the compressed data is what catches truncation
            channels = 1 if img.mode in ("L", "1", "I", "I;16", "F") else 3
            return (img.size[0], img.size[1], channels), None
    except UnidentifiedImageError:
        # Pillow's own message embeds the buffer's memory address; keep reasons reproducible.
        return None, "not an image (unrecognised file header)"
    except (OSError, SyntaxError, ValueError) as exc:
        return None, f"not a decodable {'/'.join(formats)} image ({exc})"


def _fetch(store: Any, key: str) -> bytes | None:
    try:
        return store.get_bytes(key)
    except FileNotFoundError:
        return None


def ingest(src: StreamSource) -> IngestedStream:
    """Index plus every frame, each fetched once and decoded to prove it is readable."""
    index_bytes = src.get()
    stream = _parse_index(index_bytes, src)
    p = src.params
    with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
        blobs = list(pool.map(lambda k: _fetch(src.store, k), stream.files))
    h = hashlib.sha256(index_bytes)
    n_bytes, n_bad, sizes, channels = len(index_bytes), 0, set(), set()
    problems: list[tuple[str, str]] = []
    for key, data in zip(stream.files, blobs, strict=True):
        size, problem = check_frame(data, list(p.formats))
        h.update(b"\0missing" if data is None else data)
        n_bytes += 0 if data is None else len(data)
        if problem is not None:
            n_bad += 1
            uri = src.uri(key)
            problems.append((uri, f"{uri}: {problem}"))
            continue
        sizes.add(size[:2])
        channels.add(size[2])
    n = len(stream.files)
    width, height = sorted(sizes)[0] if sizes else (None, None)
    values = dict(
        content_hash=h.hexdigest(), n_bytes=n_bytes,
        duration_s=float(stream.times[-1] - stream.times[0]), sample_rate=median_rate(stream.times),
        n_items=n, t_first=float(stream.times[0]), t_last=float(stream.times[-1]),
        n_bad_items=n_bad, width=width, height=height,
        n_channels=max(channels) if channels else None,
    )  # fmt: skip
    uri = src.uri()
    if n_bad > p.max_bad_fraction * n:
        return IngestedStream(
            values, problems, "quarantined", f"{uri}: {n_bad} of {n} frames are unreadable"
        )
    if len(sizes) > 1:
        return IngestedStream(
            values, problems, "quarantined", f"{uri}: frames have different sizes {sorted(sizes)}"
        )
    return IngestedStream(values, problems)
