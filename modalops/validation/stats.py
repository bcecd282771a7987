"""Per-sample statistics of the aligned-sample table (decoded payloads → numbers GE can check)."""

from __future__ import annotations

import hashlib
import io
import warnings
import wave

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from modalops import schema

# Grey-level weights of ITU-R BT.601, the same as PIL's "L" conversion.
_PHASH_SIZE = 32  # DCT input size; the hash keeps the 8x8 lowest frequencies (Zauner 2010)
QUANTILES = np.linspace(0.0, 1.0, 51)
QUANTILE_COLUMNS = tuple(f"q{round(p * 100):03d}" for p in QUANTILES)


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


def _image_stats(data: object) -> tuple:
    """(decodable, width, height, brightness, blur, phash) of one JPEG; NaNs when absent."""
    if data is None or (isinstance(data, float) and np.isnan(data)) or len(data) == 0:
        return (None, np.nan, np.nan, np.nan, np.nan, None)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("L", img.size)  # JPEG can decode straight to grey: cheaper than RGB
            grey = np.asarray(img.convert("L"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return (False, np.nan, np.nan, np.nan, np.nan, None)
    h, w = grey.shape
    return (True, w, h, float(grey.mean()) / 255.0, laplacian_variance(grey), phash(grey))


def _audio_stats(data: object) -> tuple:
    """(decodable, rate, duration_s, rms, clip_fraction, has_nan) of one WAV; NaNs when absent."""
    if data is None or (isinstance(data, float) and np.isnan(data)) or len(data) == 0:
        return (None, np.nan, np.nan, np.nan, np.nan, None)
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate, n_frames = (
                wav.getnchannels(),
                wav.getsampwidth(),
                wav.getframerate(),
                wav.getnframes(),
            )
            raw = wav.readframes(n_frames)
    except (wave.Error, EOFError, ValueError):
        return (False, np.nan, np.nan, np.nan, np.nan, None)
    # A truncated file is undecodable as a whole: its header promises frames it does not hold.
    if width != 2 or rate <= 0 or len(raw) < n_frames * width * channels:
        return (False, float(rate), np.nan, np.nan, np.nan, None)
    pcm = np.frombuffer(raw, dtype="<i2")
    if pcm.size == 0:
        return (True, float(rate), 0.0, 0.0, 0.0, False)
    x = pcm.astype(np.float32) / 32768.0
    clip = float(np.count_nonzero((pcm >= 32767) | (pcm <= -32767))) / pcm.size
    # PCM16 cannot hold NaN; the column still exists so a float-WAV reader can report it.
    return (
        True,
        float(rate),
        n_frames / rate,
        float(np.sqrt(np.mean(x * x))),
        clip,
        bool(not np.isfinite(x).all()),
    )


def _vibration_stats(data: object, flat_std: float = 1e-7) -> tuple:
    """(decodable, rows, nan_fraction, min, max, std, flat_channels); NaNs when absent."""
    if data is None or (isinstance(data, float) and np.isnan(data)) or len(data) == 0:
        return (None, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return (False, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan)
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.issubdtype(arr.dtype, np.floating):
        return (False, float(arr.shape[0]) if arr.ndim else np.nan, *([np.nan] * 5))
    rows = arr.shape[0]
    if rows == 0:
        return (True, 0.0, np.nan, np.nan, np.nan, np.nan, np.nan)
    nan = np.isnan(arr)
    finite_any = (~nan).any()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # An all-NaN channel warns "degrees of freedom"; its NaN std is handled below.
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(arr, axis=0) if finite_any else np.full(3, np.nan)
        # Peak-to-peak, not std: a stuck float32 reading has a std of ~1e-7 from rounding
        # in the mean, but a span of exactly 0.
        span = np.nanmax(arr, axis=0) - np.nanmin(arr, axis=0) if finite_any else std
    return (
        True,
        float(rows),
        float(nan.mean()),
        float(np.nanmin(arr)) if finite_any else np.nan,
        float(np.nanmax(arr)) if finite_any else np.nan,
        float(np.nanmean(std)) if finite_any else np.nan,
        # A channel that is all NaN counts as flat-lined too: it carries no signal.
        float(np.count_nonzero(~(span > flat_std)) if rows >= 2 else 0),
    )


def _text_stats(value: object) -> tuple:
    """(text_len, valid_utf8): bytes must decode; str must encode and hold no U+FFFD."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return (0, True)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return (len(value), False)
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a bad decode upstream
        return (len(text), False)
    # U+FFFD is what a lenient decoder leaves behind where the bytes were not UTF-8.
    return (len(text), "\ufffd" not in text)


def _column(samples: pd.DataFrame, name: str, default: object = None) -> pd.Series:
    if name in samples.columns:
        return samples[name]
    return pd.Series([default] * len(samples), index=samples.index, dtype=object)


def sample_stats(samples: pd.DataFrame, flat_std: float = 1e-7) -> pd.DataFrame:
    """One row of decoded statistics per sample, keyed by session_id / window_index.

    Statistics of a modality are NaN / None where the sample does not carry it (presence mask
    False or empty payload), so a missing modality is never mistaken for a broken one.
    """
    out = pd.DataFrame(
        {
            "session_id": samples["session_id"].astype("string").to_numpy(),
            "window_index": samples["window_index"].astype("int64").to_numpy(),
        }
    )
    t_start = pd.to_numeric(_column(samples, "t_start", np.nan), errors="coerce").to_numpy(float)
    t_end = pd.to_numeric(_column(samples, "t_end", np.nan), errors="coerce").to_numpy(float)
    out["window_s"] = t_end - t_start

    presence = {}
    for modality in schema.MODALITIES:
        col = schema.PRESENCE_COLUMNS[modality]
        if col in samples.columns:
            presence[modality] = samples[col].fillna(False).astype(bool).to_numpy()
        else:
            payload = _column(samples, schema.PAYLOAD_COLUMNS[modality])
            presence[modality] = payload.map(lambda v: v is not None and len(v) > 0).to_numpy()
        out[col] = presence[modality]

    def payloads(modality: str) -> list:
        values = _column(samples, schema.PAYLOAD_COLUMNS[modality]).to_list()
        mask = presence[modality]
        return [v if mask[i] else None for i, v in enumerate(values)]

    def table(rows: list[tuple], columns: dict[str, str]) -> None:
        frame = pd.DataFrame(rows, columns=list(columns), index=out.index)
        for name, dtype in columns.items():
            out[name] = frame[name].astype(dtype)

    table(
        [_image_stats(v) for v in payloads("camera")],
        {
            "image_decodable": "boolean",
            "image_width": "float64",
            "image_height": "float64",
            "brightness": "float64",
            "blur": "float64",
            "phash": "UInt64",
        },
    )
    # Exact frame identity (a copied file), beside the perceptual hash (a similar picture).
    out["frame_sha1"] = pd.array(
        [hashlib.sha1(v).hexdigest() if v else None for v in payloads("camera")], dtype="string"
    )
    table(
        [_audio_stats(v) for v in payloads("audio")],
        {
            "audio_decodable": "boolean",
            "audio_rate": "float64",
            "audio_duration_s": "float64",
            "audio_rms": "float64",
            "audio_clip_fraction": "float64",
            "audio_nan": "boolean",
        },
    )
    table(
        [_vibration_stats(v, flat_std) for v in payloads("vibration")],
        {
            "vib_decodable": "boolean",
            "vib_rows": "float64",
            "vib_nan_fraction": "float64",
            "vib_min": "float64",
            "vib_max": "float64",
            "vib_std": "float64",
            "vib_flat_channels": "float64",
        },
    )
    table(
        [_text_stats(v) for v in _column(samples, "notes_text").to_list()],
        {"text_len": "float64", "text_valid_utf8": "boolean"},
    )
    out.loc[~presence["notes"], "text_len"] = np.nan
    out.loc[~presence["notes"], "text_valid_utf8"] = pd.NA
    with np.errstate(all="ignore"):
        out["audio_duration_ratio"] = out["audio_duration_s"] / out["window_s"]
        out["vib_rate"] = out["vib_rows"] / out["window_s"]

    label = _column(samples, "label")
    out["label"] = label.astype("string").to_numpy()
    boundary = _column(samples, "boundary", False).fillna(False).astype(bool).to_numpy()
    out["boundary"] = boundary
    out["label_overlap"] = pd.to_numeric(
        _column(samples, "label_overlap", np.nan), errors="coerce"
    ).to_numpy(float)
    out["align_confidence"] = pd.to_numeric(
        _column(samples, "align_confidence", np.nan), errors="coerce"
    ).to_numpy(float)
    for col in schema.META_COLUMNS:
        out[col] = _column(samples, col).astype("string").to_numpy()
    add_derived(out)
    return out


def add_derived(stats: pd.DataFrame) -> pd.DataFrame:
    """Columns computed from other statistics (vectorised); also used on synthetic tables."""
    presence = stats[[schema.PRESENCE_COLUMNS[m] for m in schema.MODALITIES]].to_numpy(bool)
    stats["n_present"] = presence.sum(axis=1)
    stats["unlabelled"] = stats["label"].isna().to_numpy() & ~stats["boundary"].to_numpy(bool)
    return stats


NUMERIC_SUMMARY = {
    "camera": ("brightness", "blur"),
    "audio": ("audio_rms", "audio_clip_fraction", "audio_duration_s"),
    "vibration": ("vib_std", "vib_nan_fraction", "vib_min", "vib_max", "vib_rate"),
    "notes": ("text_len",),
    "cross": ("align_confidence", "n_present"),
}


def summarize_for_reference(stats: pd.DataFrame) -> pd.DataFrame:
    """Per-modality summary of a dataset version, the reference its successors are compared to.

    One row per (modality, statistic). Numeric rows carry n, mean, std and 51 quantiles
    (q000 … q100, every 2%), enough to rebuild an approximate distribution for PSI / KS.
    Category rows (statistic 'label', one per class, plus presence rates) carry their share
    in `mean`.
    """
    rows = []
    for modality, names in NUMERIC_SUMMARY.items():
        for name in names:
            if name not in stats.columns:
                continue
            values = pd.to_numeric(stats[name], errors="coerce").to_numpy(float)
            values = values[np.isfinite(values)]
            row = {"modality": modality, "statistic": name, "category": "", "kind": "numeric"}
            row["n"] = int(values.size)
            row["mean"] = float(values.mean()) if values.size else np.nan
            row["std"] = float(values.std()) if values.size else np.nan
            qs = np.quantile(values, QUANTILES) if values.size else np.full(QUANTILES.size, np.nan)
            row.update(dict(zip(QUANTILE_COLUMNS, qs.tolist(), strict=True)))
            rows.append(row)
    labels = stats["label"].dropna() if "label" in stats.columns else pd.Series(dtype=str)
    for name in schema.LABELS:
        share = float((labels == name).mean()) if len(labels) else np.nan
        rows.append(
            {
                "modality": "label",
                "statistic": "label",
                "category": name,
                "kind": "category",
                "n": int(len(labels)),
                "mean": share,
            }
        )
    for modality in schema.MODALITIES:
        col = schema.PRESENCE_COLUMNS[modality]
        if col in stats.columns:
            rows.append(
                {
                    "modality": modality,
                    "statistic": "presence",
                    "category": modality,
                    "kind": "category",
                    "n": int(len(stats)),
                    "mean": float(stats[col].astype(bool).mean()) if len(stats) else np.nan,
                }
            )
    summary = pd.DataFrame(rows)
    for col in ("std", *QUANTILE_COLUMNS):
        if col not in summary.columns:
            summary[col] = np.nan
    return summary[
        ["modality", "statistic", "category", "kind", "n", "mean", "std", *QUANTILE_COLUMNS]
    ]
