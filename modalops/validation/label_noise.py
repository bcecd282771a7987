"""Label-consistency check: flag windows whose label their own signals contradict (confident learning).

Every per-file check passes on a label that is merely wrong (an interval shifted by a second or
two, a class swapped for a confusable one), so the only evidence against it is the payload.
Following Northcutt et al. 2021, "Confident Learning: Estimating Uncertainty in Dataset
Labels" (JAIR 70), a cheap classifier is trained on cheap per-window features, out of fold
with the folds split *by session* (a window's own session never trains the model that judges
it: neighbouring windows are near-copies, and the label errors come in runs within one
session), and a window is flagged when

- its given label's out-of-fold probability is below that class's threshold, the mean
  self-confidence of the windows given that class (t_j in the paper), and
- another class j is confidently predicted instead: p_j >= t_j and j is the most probable of
  the classes above their thresholds (an off-diagonal entry of the paper's confident joint).

The features know nothing about the scenario (where a person stands, which frequency a fault
has): a 8x8 RGB thumbnail of the frame, log band energies of the audio, per-axis log spectral
band energies of the vibration, hashed note tokens, each also relative to its session's median
(recordings differ per station; a label is about what changes within one). A missing modality
gives zeros and a presence flag.
"""

from __future__ import annotations

import io
import re
import wave
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from modalops import schema

THUMB = 8  # thumbnail side: JPEG decodes at 1/8 scale for free (libjpeg DCT scaling)
AUDIO_BANDS = 16
AUDIO_FMIN_HZ = 50.0
AUDIO_NFFT = 512
VIB_BANDS = 8
VIB_FMIN_HZ = 1.0
NOTE_BUCKETS = 32
_TOKEN = re.compile(r"[a-z0-9]+")


# ---- features --------------------------------------------------------------------------------


def _empty(data: object) -> bool:
    return data is None or (isinstance(data, float) and np.isnan(data)) or len(data) == 0


def image_features(data: object) -> np.ndarray | None:
    """8x8 RGB thumbnail in [0, 1] (192 values), or None when absent or undecodable."""
    if _empty(data):
        return None
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            img.draft("RGB", (THUMB, THUMB))
            thumb = img.convert("RGB")
            if thumb.size != (THUMB, THUMB):
                thumb = thumb.resize((THUMB, THUMB), Image.BILINEAR)
            return np.asarray(thumb, dtype=np.float32).ravel() / 255.0
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def _log_bands(power: np.ndarray, freqs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """log10 of the power summed in each [edges[i], edges[i+1]) band."""
    idx = np.searchsorted(edges, freqs, side="right") - 1
    ok = (idx >= 0) & (idx < len(edges) - 1)
    bands = np.bincount(idx[ok], weights=power[ok], minlength=len(edges) - 1)
    return np.log10(bands + 1e-10).astype(np.float32)


def audio_features(data: object) -> np.ndarray | None:
    """16 log-spaced log band energies (50 Hz to Nyquist), log RMS and envelope modulation."""
    if _empty(data):
        return None
    try:
        with wave.open(io.BytesIO(bytes(data)), "rb") as wav:
            rate, width, n = wav.getframerate(), wav.getsampwidth(), wav.getnframes()
            raw = wav.readframes(n)
    except (wave.Error, EOFError, OSError, ValueError):
        return None
    if width != 2 or rate <= 0 or len(raw) < 2 * AUDIO_NFFT:
        return None
    x = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    n_frames = 1 + (x.size - AUDIO_NFFT) // (AUDIO_NFFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(x, AUDIO_NFFT)[:: AUDIO_NFFT // 2][:n_frames]
    spec = np.abs(np.fft.rfft(frames * np.hanning(AUDIO_NFFT), axis=1)) ** 2
    freqs = np.fft.rfftfreq(AUDIO_NFFT, 1.0 / rate)
    edges = np.geomspace(AUDIO_FMIN_HZ, rate / 2, AUDIO_BANDS + 1)
    edges[-1] += 1.0  # include the Nyquist bin
    bands = _log_bands(spec.mean(axis=0), freqs, edges)
    frame_rms = np.sqrt((frames**2).mean(axis=1))
    rms = float(np.sqrt((x**2).mean()))
    modulation = float(frame_rms.std() / (frame_rms.mean() + 1e-8))  # knocks, bursts
    return np.concatenate([bands, [np.log10(rms + 1e-8), modulation]]).astype(np.float32)


def vibration_features(data: object, window_s: float) -> np.ndarray | None:
    """Per axis: 8 log-spaced log spectral band energies (1 Hz to Nyquist), mean, log std."""
    if _empty(data):
        return None
    try:
        arr = np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 8:
        return None
    arr = arr.astype(np.float64)
    mean = np.nanmean(arr, axis=0)
    if not np.isfinite(mean).all():
        return None
    centred = np.where(np.isnan(arr), 0.0, arr - mean)
    rate = arr.shape[0] / window_s if window_s > 0 else float(arr.shape[0])
    spec = np.abs(np.fft.rfft(centred * np.hanning(arr.shape[0])[:, None], axis=0)) ** 2
    freqs = np.fft.rfftfreq(arr.shape[0], 1.0 / rate)
    edges = np.geomspace(VIB_FMIN_HZ, rate / 2, VIB_BANDS + 1)
    edges[-1] += 1e-6
    bands = [_log_bands(spec[:, a], freqs, edges) for a in range(3)]
    std = np.log10(centred.std(axis=0) + 1e-8)
    return np.concatenate([*bands, mean, std]).astype(np.float32)


def notes_features(text: object) -> np.ndarray | None:
    """Counts of word tokens hashed into 32 buckets (crc32: stable across processes)."""
    if text is None or (isinstance(text, float) and np.isnan(text)) or not str(text).strip():
        return None
    out = np.zeros(NOTE_BUCKETS, dtype=np.float32)
    for token in _TOKEN.findall(str(text).lower()):
        out[zlib.crc32(token.encode()) % NOTE_BUCKETS] += 1.0
    return out


_DIMS = {
    "camera": 3 * THUMB * THUMB,
    "audio": AUDIO_BANDS + 2,
    "vibration": 3 * VIB_BANDS + 6,
    "notes": NOTE_BUCKETS,
}


def label_features(samples: pd.DataFrame, modalities: list[str] | None = None) -> np.ndarray:
    """[n, d] float32 features of the aligned samples: per modality its block, the block minus
    the session's median, and a presence flag (0 and a zero block when absent)."""
    modalities = list(modalities or schema.MODALITIES)
    n = len(samples)
    window = (
        (samples["t_end"].astype(float) - samples["t_start"].astype(float)).to_numpy()
        if {"t_start", "t_end"} <= set(samples.columns)
        else np.ones(n)
    )
    sessions = samples["session_id"].astype(str).to_numpy()
    blocks = []
    for modality in modalities:
        dim = _DIMS[modality]
        col = schema.PAYLOAD_COLUMNS[modality]
        block = np.zeros((n, dim), dtype=np.float32)
        present = np.zeros(n, dtype=bool)
        values = samples[col].to_numpy() if col in samples.columns else [None] * n
        for i, payload in enumerate(values):
            if modality == "camera":
                f = image_features(payload)
            elif modality == "audio":
                f = audio_features(payload)
            elif modality == "vibration":
                f = vibration_features(payload, float(window[i]))
            else:
                f = notes_features(payload)
            if f is not None and f.shape == (dim,) and np.isfinite(f).all():
                block[i], present[i] = f, True
        relative = np.zeros_like(block)
        if modality != "notes":  # notes are sparse counts; a session median of them is zero
            for sid in np.unique(sessions):
                rows = (sessions == sid) & present
                if rows.any():
                    relative[rows] = block[rows] - np.median(block[rows], axis=0)
            blocks += [block, relative]
        else:
            blocks.append(block)
        blocks.append(present[:, None].astype(np.float32))
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0), np.float32)


# ---- confident learning ----------------------------------------------------------------------


@dataclass
class LabelCheckResult:
    """Out-of-fold probabilities, per-class thresholds and the flagged windows."""

    probs: np.ndarray  # [n, n_classes] out-of-fold, NaN rows for unjudged samples
    given: np.ndarray  # [n] given label index, -1 when unjudged (no label / unknown label)
    thresholds: np.ndarray  # [n_classes] mean self-confidence per class (t_j)
    flagged: np.ndarray  # [n] bool
    suggested: np.ndarray  # [n] confidently predicted class index, -1 when none
    folds: int

    def self_confidence(self) -> np.ndarray:
        out = np.full(len(self.given), np.nan)
        ok = self.given >= 0
        out[ok] = self.probs[np.flatnonzero(ok), self.given[ok]]
        return out


def out_of_fold_probs(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    n_classes: int,
    folds: int = 5,
    c: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Out-of-fold class probabilities of a multinomial logistic regression, folds by group.

    Returns (probs [n, n_classes], folds used). A class missing from a fold's training part
    gets probability 0 there.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    n_groups = len(np.unique(groups))
    folds = min(folds, n_groups)
    probs = np.zeros((len(labels), n_classes))
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(features, labels, groups):
        scaler = StandardScaler().fit(features[train])
        model = LogisticRegression(C=c, max_iter=300)
        model.fit(scaler.transform(features[train]), labels[train])
        probs[np.ix_(test, model.classes_)] = model.predict_proba(scaler.transform(features[test]))
    return probs, folds


def confident_flags(
    probs: np.ndarray, given: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flagged, suggested class, thresholds) from the confident joint (Northcutt et al. 2021).

    t_j is the mean p_j over samples given j; a sample's confident class is the most probable
    of the classes whose p_j >= t_j; it is flagged when that class is not its given one (and
    its given label's p is below its own threshold, so a sample sure of its label stays).
    """
    thresholds = np.array(
        [probs[given == j, j].mean() if (given == j).any() else 1.0 for j in range(n_classes)]
    )
    above = probs >= thresholds[None, :]
    masked = np.where(above, probs, -1.0)
    suggested = np.where(above.any(axis=1), masked.argmax(axis=1), -1)
    self_conf = probs[np.arange(len(given)), np.clip(given, 0, None)]
    flagged = (
        (given >= 0)
        & (suggested >= 0)
        & (suggested != given)
        & (self_conf < thresholds[np.clip(given, 0, None)])
    )
    return flagged, suggested, thresholds


def check_labels(
    samples: pd.DataFrame,
    folds: int = 5,
    c: float = 1.0,
    modalities: list[str] | None = None,
    features: np.ndarray | None = None,
    seed: int = 0,
) -> LabelCheckResult:
    """Out-of-fold label-consistency check of the aligned samples (one row each, in order).

    Only windows with a label in `schema.LABELS` are judged (and train the folds' models).
    """
    n_classes = len(schema.LABELS)
    labels = samples["label"].astype("string").to_numpy(dtype=object, na_value=None)
    given = np.array([schema.LABEL_INDEX.get(x, -1) if x else -1 for x in labels], np.int64)
    probs = np.full((len(samples), n_classes), np.nan)
    flagged = np.zeros(len(samples), dtype=bool)
    suggested = np.full(len(samples), -1, dtype=np.int64)
    judged = np.flatnonzero(given >= 0)
    groups = samples["session_id"].astype(str).to_numpy()
    if len(np.unique(groups[judged])) < 2 or len(np.unique(given[judged])) < 2:
        return LabelCheckResult(probs, given, np.ones(n_classes), flagged, suggested, 0)
    if features is None:
        features = label_features(samples, modalities)
    p, used = out_of_fold_probs(
        features[judged], given[judged], groups[judged], n_classes, folds, c, seed
    )
    f, s, thresholds = confident_flags(p, given[judged], n_classes)
    probs[judged], flagged[judged], suggested[judged] = p, f, s
    return LabelCheckResult(probs, given, thresholds, flagged, suggested, used)
