"""Audio streams: a WAV (stdlib) or FLAC (PyAV) file, averaged to mono, at the file's own rate."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from modalops.dataset.errors import RawDataError
from modalops.kinds.audio.wav import decode_wav
from modalops.kinds.base import IngestedStream, Stream, StreamSource


@dataclass
class AudioStream(Stream):
    """Mono float32 samples in [-1, 1], their rate, and the device time of the first sample."""

    samples: np.ndarray
    sample_rate: int
    start_s: float
    params: Any = None
    n_channels: int = 1
    kind: str = "audio"

    def span(self) -> tuple[float, float] | None:
        return self.start_s, self.start_s + self.samples.size / self.sample_rate


def decode_flac(data: bytes, uri: str) -> tuple[np.ndarray, int, int]:
    """FLAC (or any FFmpeg audio) bytes -> float32 mono samples, the rate and the channel count."""
    import av  # imported lazily: only compressed audio needs FFmpeg

    chunks, rate, channels = [], 0, 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise RawDataError(uri, "no audio track")
            track = container.streams.audio[0]
            rate, channels = int(track.rate), int(track.channels)
            for frame in container.decode(track):
                x = frame.to_ndarray()
                if np.issubdtype(x.dtype, np.integer):
                    x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
                x = x.astype(np.float32)
                # planar: (channels, n); packed: (1, n * channels)
                x = x.reshape(-1, channels).T if x.shape[0] == 1 and channels > 1 else x
                chunks.append(x.mean(axis=0))
    except RawDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - FFmpeg raises many error types; name the file
        raise RawDataError(
            uri, f"not a decodable audio file ({type(exc).__name__}: {exc})"
        ) from None
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return samples.astype(np.float32), rate, channels


def _channels_of_wav(data: bytes) -> int:
    import wave

    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            return wav.getnchannels()
    except Exception:  # noqa: BLE001 - decode_wav reports the real problem
        return 1


def _parse(data: bytes, src: StreamSource) -> AudioStream:
    uri = src.uri()
    if src.key.lower().endswith(".wav") or data[:4] == b"RIFF":
        samples, rate = decode_wav(data, uri)
        channels = _channels_of_wav(data)
    else:
        samples, rate, channels = decode_flac(data, uri)
    expected = src.clock.get("sample_rate")
    if expected is not None and int(expected) != rate:
        raise RawDataError(uri, f"sample rate {rate} Hz, the clock file says {int(expected)} Hz")
    if samples.size == 0:
        raise RawDataError(uri, "no audio samples")
    start = float(src.clock.get(src.params.start_field, 0.0))
    return AudioStream(samples, int(rate), start, src.params, channels)


def read(src: StreamSource) -> AudioStream:
    return _parse(src.get(), src)


def ingest(src: StreamSource) -> IngestedStream:
    data = src.get()
    a = _parse(data, src)
    n = int(a.samples.size)
    return IngestedStream(dict(
        content_hash=hashlib.sha256(data).hexdigest(), n_bytes=len(data),
        duration_s=n / a.sample_rate, sample_rate=float(a.sample_rate), n_items=n,
        t_first=a.start_s, t_last=a.start_s + (n - 1) / a.sample_rate,
        nan_fraction=float(np.mean(~np.isfinite(a.samples))), n_channels=a.n_channels,
    ))  # fmt: skip
