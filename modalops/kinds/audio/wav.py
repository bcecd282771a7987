"""PCM WAV bytes to samples and back, for audio readers, window payloads and the codec (stdlib + numpy)."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np

from modalops.dataset.errors import RawDataError


def _fmt_fields(data: bytes) -> tuple[int, int, int, int, int, int] | None:
    """(format tag, channels, rate, byte rate, block align, bits) of the fmt chunk, if found."""
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if cid == b"fmt ":
            return (
                struct.unpack_from("<HHIIHH", data, pos + 8)
                if size >= 16 and pos + 24 <= len(data)
                else None
            )
        pos += 8 + size + (size & 1)
    return None


def decode_wav(data: bytes, uri: str) -> tuple[np.ndarray, int]:
    """PCM WAV bytes (8/16/32-bit, any channels) -> float32 mono samples in [-1, 1] and the rate."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        # The RIFF size is redundant with the file's length, and streaming writers leave 0 or
        # 0xFFFFFFFF there (libsndfile and FFmpeg ignore it); the stdlib reader would stop at
        # it and call a whole file truncated. The data chunk's own size is still checked.
        data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
        fields = _fmt_fields(data)
        if fields is not None:
            _, channels, rate, byte_rate, align, bits = fields
            # The stdlib reader sizes frames from `bits` alone: a header whose fields disagree
            # would be decoded as a different signal (another length, noise) without an error.
            if channels and bits and align != channels * ((bits + 7) // 8):
                raise RawDataError(
                    uri, f"inconsistent WAV header: block align {align} bytes, but {channels} "
                    f"channel(s) of {bits} bits need {channels * ((bits + 7) // 8)}"
                )  # fmt: skip
            if channels and bits and byte_rate != rate * align:
                raise RawDataError(
                    uri, f"inconsistent WAV header: byte rate {byte_rate}, but {rate} Hz x "
                    f"{align}-byte frames is {rate * align}"
                )  # fmt: skip
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            n_channels, width, rate, n_frames = (
                wav.getnchannels(),
                wav.getsampwidth(),
                wav.getframerate(),
                wav.getnframes(),
            )
            raw = wav.readframes(n_frames)
    except (wave.Error, EOFError) as exc:
        raise RawDataError(uri, f"not a readable WAV ({exc})") from None
    dtypes = {1: np.uint8, 2: "<i2", 4: "<i4"}
    if width not in dtypes:
        raise RawDataError(
            uri, f"unsupported WAV sample width {8 * width} bits (expected 8, 16 or 32)"
        )
    if rate <= 0 or n_channels <= 0:
        raise RawDataError(uri, f"WAV header has rate {rate} Hz and {n_channels} channels")
    if len(raw) < n_frames * width * n_channels:
        got = len(raw) // (width * n_channels)
        raise RawDataError(uri, f"truncated WAV: header says {n_frames} frames, file holds {got}")
    x = np.frombuffer(raw, dtype=dtypes[width]).astype(np.float32)
    x = (x - 128.0) / 128.0 if width == 1 else x / float(2 ** (8 * width - 1))
    if n_channels > 1:
        x = x.reshape(-1, n_channels).mean(axis=1)
    return x, rate


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """PCM16 mono WAV bytes from int16 samples or floats in [-1, 1] (the inverse of decode_wav)."""
    if samples.dtype != np.int16:
        samples = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(sample_rate))
        wav.writeframes(samples.astype("<i2", copy=False).tobytes())
    return buf.getvalue()
