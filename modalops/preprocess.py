"""Raw payloads → model tensors, shared by the DataModule and the served model (no train/serve skew).

Self-contained on purpose: the MLflow pyfunc ships this file to consumers that have only mlflow
and torch installed, so it imports numpy, torch, PIL and the standard library, nothing else.
"""

from __future__ import annotations

import io
import math
import re
import wave
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

# Copied from modalops.schema so this file stays importable without the package.
MODALITIES: tuple[str, ...] = ("camera", "audio", "vibration", "notes")
LABELS: tuple[str, ...] = ("normal", "proximity", "fault", "near_miss")

IMAGE_SIZE = 64
AUDIO_RATE = 16000
AUDIO_SAMPLES = 16000  # one second
VIB_ROWS = 100  # ~100 Hz telemetry, one second
TEXT_DIM = 256

# 512-point STFT (31 Hz bins) averaged into 64 linear bands of 125 Hz: fine enough to place the
# 1.5-3 kHz fault whine, coarse enough for a tiny CNN. Hop 250 gives 65 frames per second.
_N_FFT = 512
_HOP = 250
AUDIO_BANDS = 64
AUDIO_FRAMES = 1 + AUDIO_SAMPLES // _HOP
AUDIO_SHAPE = (AUDIO_BANDS, AUDIO_FRAMES)
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_N_FFT) / _N_FFT)).astype(
    np.float32
)  # periodic Hann

_TOKEN = re.compile(r"[a-z0-9]+")


def _is_empty(data: object) -> bool:
    """None, NaN (pandas' missing value), or a zero-length payload."""
    if data is None:
        return True
    if isinstance(data, float) and math.isnan(data):
        return True
    if isinstance(data, (bytes, bytearray, memoryview, str)):
        return len(data) == 0 or (isinstance(data, str) and not data.strip())
    if isinstance(data, np.ndarray):
        return data.size == 0
    if isinstance(data, (list, tuple)):
        return len(data) == 0
    return False


def decode_image(data: bytes | None) -> torch.Tensor:
    """JPEG/PNG bytes → float32 [3, 64, 64] in [0, 1]; zeros when absent; resized if another size."""
    if _is_empty(data):
        return torch.zeros(3, IMAGE_SIZE, IMAGE_SIZE)
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            img.load()  # PIL decodes lazily; force it here so corrupt bytes fail inside the try
            img = img.convert("RGB")
            if img.size != (IMAGE_SIZE, IMAGE_SIZE):
                img = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"camera: payload is not a decodable image ({exc})") from None
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def _read_wav(data: bytes) -> tuple[np.ndarray, int]:
    try:
        with wave.open(io.BytesIO(bytes(data)), "rb") as wav:
            rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, OSError) as exc:
        raise ValueError(f"audio: payload is not a readable WAV file ({exc})") from None
    dtypes = {1: np.uint8, 2: np.int16, 4: np.int32}
    if width not in dtypes:
        raise ValueError(f"audio: unsupported WAV sample width {width} bytes (expected 1, 2 or 4)")
    if rate <= 0 or channels <= 0:
        raise ValueError(f"audio: WAV header has rate {rate} and {channels} channels")
    usable = len(frames) - len(frames) % (width * channels)
    x = np.frombuffer(frames[:usable], dtype=dtypes[width]).astype(np.float32)
    if width == 1:
        x = (x - 128.0) / 128.0
    else:
        x /= float(2 ** (8 * width - 1))
    return x.reshape(-1, channels).mean(axis=1), rate


def _resample(x: np.ndarray, n_out: int) -> np.ndarray:
    """Linear interpolation of `x` (along axis 0) onto `n_out` evenly spaced points."""
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


def decode_audio(data: bytes | None) -> torch.Tensor:
    """WAV bytes → float32 [64, 65] log-magnitude band spectrogram of one second; zeros when absent.

    Other sample rates are resampled to 16 kHz; stereo is averaged; shorter clips are zero-padded
    and longer ones cropped to one second, so every window has the same shape.
    """
    if _is_empty(data):
        return torch.zeros(AUDIO_SHAPE)
    x, rate = _read_wav(data)
    if rate != AUDIO_RATE and len(x):
        x = _resample(x, max(1, round(len(x) * AUDIO_RATE / rate)))
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)[:AUDIO_SAMPLES]
    x = np.pad(x, (0, AUDIO_SAMPLES - len(x)))
    # numpy rather than torch.stft: the same numbers (periodic Hann, reflect padding, centred
    # frames), but no intra-op thread pool, which on a loaded 2-core box made each call ~20x slower
    padded = np.pad(x, _N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, _N_FFT)[::_HOP] * _WINDOW
    spec = np.abs(np.fft.rfft(frames, axis=1)).T  # [257, 65]
    bands = spec[: AUDIO_BANDS * 4].reshape(AUDIO_BANDS, 4, -1).mean(axis=1)
    return torch.from_numpy(np.log1p(bands * 10.0).astype(np.float32))


def decode_vibration(data: bytes | np.ndarray | list | None) -> torch.Tensor:
    """`.npy` bytes or an (n, 3) array/list → float32 [3, 100]; zeros when absent.

    NaN/inf become 0 (validation bounds their share); any n ≥ 1 is linearly resampled to 100 rows,
    which is what one second at ~100 Hz holds, so slight rate differences between stations vanish.
    """
    if _is_empty(data):
        return torch.zeros(3, VIB_ROWS)
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            arr = np.load(io.BytesIO(bytes(data)), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"vibration: payload is not a readable .npy array ({exc})") from None
    else:
        try:
            arr = np.asarray(data)
            if arr.dtype == object:  # e.g. a pandas/arrow cell holding a list of row arrays
                arr = np.stack([np.asarray(r, dtype=np.float32) for r in arr])
            arr = arr.astype(np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"vibration: cannot read the telemetry as numbers ({exc})") from None
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(
            f"vibration: expected an (n, 3) array of ax, ay, az, got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        return torch.zeros(3, VIB_ROWS)
    arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return torch.from_numpy(_resample(arr, VIB_ROWS).T.copy())


def encode_text(text: str | None) -> torch.Tensor:
    """Note text → float32 [256] hashed bag of words (crc32, so identical across processes)."""
    out = torch.zeros(TEXT_DIM)
    if _is_empty(text):
        return out
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8", errors="replace")
    for token in _TOKEN.findall(str(text).lower()):
        out[zlib.crc32(token.encode("utf-8")) % TEXT_DIM] += 1.0
    return torch.log1p(out)


_DECODERS = {
    "camera": decode_image,
    "audio": decode_audio,
    "vibration": decode_vibration,
    "notes": encode_text,
}


def raw_to_tensors(
    raw: Mapping[str, object], modalities: Sequence[str] | None = None
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Raw payloads keyed camera/audio/vibration/notes → (tensors per modality, presence float32 [4]).

    A missing key, None, NaN or an empty payload is an absent modality: zero tensor, presence 0.
    `modalities` limits decoding to what a model uses (a unimodal baseline skips the STFT and
    JPEG work); the others come back as zeros but keep their true presence bit.
    """
    wanted = MODALITIES if modalities is None else tuple(modalities)
    present = {m: not _is_empty(raw.get(m)) for m in MODALITIES}
    tensors = {
        m: _DECODERS[m](raw.get(m) if present[m] and m in wanted else None) for m in MODALITIES
    }
    presence = torch.tensor([float(present[m]) for m in MODALITIES], dtype=torch.float32)
    return tensors, presence
