"""Video streams: an MP4/MKV file decoded with PyAV into frames and their presentation times."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from modalops.dataset.errors import RawDataError
from modalops.dataset.layout import check_times
from modalops.kinds.base import IngestedStream, Stream, StreamSource
from modalops.kinds.timing import median_rate, sampled_span


@dataclass
class VideoStream(Stream):
    """Decoded frames (n, H, W, 3) uint8 and their device times (PTS + the clock-file start)."""

    times: np.ndarray
    frames: np.ndarray
    params: Any = None
    kind: str = "video"

    def span(self) -> tuple[float, float] | None:
        return sampled_span(self.times)


def decode_video(data: bytes, uri: str) -> tuple[np.ndarray, np.ndarray]:
    """(times in seconds from the presentation timestamps, frames (n, H, W, 3) uint8)."""
    import av  # imported lazily: only video streams need FFmpeg

    times, frames = [], []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise RawDataError(uri, "no video track")
            track = container.streams.video[0]
            for frame in container.decode(track):
                if frame.pts is None:
                    raise RawDataError(uri, f"frame {len(frames)} has no presentation timestamp")
                times.append(float(frame.pts * frame.time_base))
                frames.append(frame.to_ndarray(format="rgb24"))
    except RawDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - FFmpeg raises many error types; name the file
        raise RawDataError(uri, f"not a decodable video ({type(exc).__name__}: {exc})") from None
    if not frames:
        raise RawDataError(uri, "video has no frames")
    return np.asarray(times, dtype=np.float64), np.stack(frames)


def _parse(data: bytes, src: StreamSource) -> VideoStream:
    uri = src.uri()
    times, frames = decode_video(data, uri)
    start = float(src.clock.get(src.params.start_field, 0.0))
    times = times + start
    check_times(uri, times, "video frames", first_line=0)
    return VideoStream(times=times, frames=frames, params=src.params)


def read(src: StreamSource) -> VideoStream:
    return _parse(src.get(), src)


def ingest(src: StreamSource) -> IngestedStream:
    data = src.get()
    stream = _parse(data, src)
    p = src.params
    rate = median_rate(stream.times)
    n, h, w = stream.frames.shape[:3]
    values = dict(
        content_hash=hashlib.sha256(data).hexdigest(), n_bytes=len(data),
        duration_s=float(stream.times[-1] - stream.times[0]), sample_rate=rate, n_items=n,
        t_first=float(stream.times[0]), t_last=float(stream.times[-1]), n_bad_items=0,
        width=w, height=h, n_channels=3,
    )  # fmt: skip
    if p.fps is not None and rate is not None and abs(rate - p.fps) > p.fps_tolerance * p.fps:
        return IngestedStream(
            values, status="quarantined",
            reason=f"{src.uri()}: frame rate {rate:.2f} fps, the spec says {p.fps:g} fps",
        )  # fmt: skip
    return IngestedStream(values)
