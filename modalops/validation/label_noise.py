"""Label-consistency check: flag windows whose label their own signals contradict (confident learning).

Every per-file check passes on a label that is merely wrong (an interval shifted by a second or
two, a class swapped for a confusable one), so the only evidence against it is the payload.
Following Northcutt et al. 2021, "Confident Learning: Estimating Uncertainty in Dataset
Labels" (JAIR 70), a cheap classifier (multinomial logistic regression) is trained on cheap
per-window features out of fold, with the folds split *by session*: a window's own session never
trains the model that judges it, since neighbouring windows are near-copies and label errors
come in runs within one session. A window is flagged when another class is confidently
predicted (p_j >= t_j, the mean self-confidence of the windows given j, and j the most probable
such class) while its given label is not (p_given < t_given): an off-diagonal entry of the
paper's confident joint.

The features know nothing about the scenario (where a person stands, which frequency a fault
has); recordings differ per station while a label is about what changes within one, so each is
taken relative to its session: per cell of an 8x8 RGB thumbnail, the distance from the
session's median frame; 16 log band energies of the audio; per-axis log spectral band energies
of the vibration (and their max / min over the axes, and of the magnitude); hashed note tokens.
A missing modality gives a zero block and a presence flag of 0.
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
REASON = "label_inconsistent"  # the quarantine reason of a flagged window (its prefix)


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
    """Log spectral band energies (8 log-spaced bands, 1 Hz to Nyquist) of each axis, their max
    and min over the axes (a signature on any one axis, whatever the mounting), of the
    magnitude (its amplitude modulation), and the per-axis log std: 51 values."""
    if _empty(data):
        return None
    try:
        arr = np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 8:
        return None
    arr = arr.astype(np.float64)
    if np.isnan(arr).all(axis=0).any() or np.isinf(arr).any():
        return None
    mean = np.nanmean(arr, axis=0)
    arr = np.where(np.isnan(arr), mean, arr)
    centred = arr - mean
    magnitude = np.sqrt((arr**2).sum(axis=1))
    rate = arr.shape[0] / window_s if window_s > 0 else float(arr.shape[0])
    taper = np.hanning(arr.shape[0])
    spec = np.abs(np.fft.rfft(centred * taper[:, None], axis=0)) ** 2
    mag_spec = np.abs(np.fft.rfft((magnitude - magnitude.mean()) * taper)) ** 2
    freqs = np.fft.rfftfreq(arr.shape[0], 1.0 / rate)
    edges = np.geomspace(VIB_FMIN_HZ, rate / 2, VIB_BANDS + 1)
    edges[-1] += 1e-6
    axes = np.stack([_log_bands(spec[:, a], freqs, edges) for a in range(3)])
    std = np.log10(centred.std(axis=0) + 1e-8)
    return np.concatenate(
        [axes.ravel(), axes.max(axis=0), axes.min(axis=0), _log_bands(mag_spec, freqs, edges), std]
    ).astype(np.float32)


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
    "vibration": 6 * VIB_BANDS + 3,
    "notes": NOTE_BUCKETS,
}


def _session_median(block: np.ndarray, sessions: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Per row, the median of its session's present rows (zeros for absent rows)."""
    out = np.zeros_like(block)
    for sid in np.unique(sessions[present]):
        rows = (sessions == sid) & present
        out[rows] = np.median(block[rows], axis=0)
    return out


def _raw_block(
    samples: pd.DataFrame, modality: str, window: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(features [n, dim], present [n]) of one modality's payload column."""
    n, dim = len(samples), _DIMS[modality]
    block = np.zeros((n, dim), dtype=np.float32)
    present = np.zeros(n, dtype=bool)
    col = schema.PAYLOAD_COLUMNS[modality]
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
    return block, present


def label_features(samples: pd.DataFrame, modalities: list[str] | None = None) -> np.ndarray:
    """[n, d] float32 features of the aligned samples, one block per modality plus its presence
    flag (a zero block when absent).

    Recordings differ per station and camera (background, hum, mounting) while a label is about
    what changes within a recording, so the blocks are taken relative to the session's median:
    camera, per thumbnail cell, how far the frame is from the session's median frame (absolute
    and in units of that cell's median change, so a noisy night camera is not always "changed");
    audio and vibration, the features and their difference from the session median; notes, the
    hashed token counts as they are.
    """
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
        block, present = _raw_block(samples, modality, window)
        if modality == "camera":
            diff = block - _session_median(block, sessions, present)
            change = np.sqrt((diff.reshape(n, THUMB * THUMB, 3) ** 2).sum(axis=2))
            typical = _session_median(change, sessions, present)
            blocks += [change, np.log1p(change / (typical + 1e-3)) * present[:, None]]
        elif modality in ("audio", "vibration"):
            blocks += [block, block - _session_median(block, sessions, present)]
        else:
            blocks.append(block)
        blocks.append(present[:, None].astype(np.float32))
    return (
        np.concatenate(blocks, axis=1).astype(np.float32)
        if blocks
        else np.zeros((n, 0), np.float32)
    )


# ---- confident learning ----------------------------------------------------------------------


@dataclass
class LabelCheckResult:
    """Out-of-fold probabilities, per-class thresholds and the flagged windows (row order of the
    samples judged)."""

    probs: np.ndarray  # [n, n_classes] out-of-fold; NaN rows for windows not judged
    given: np.ndarray  # [n] given label index; -1 when not judged (no label, unknown label)
    thresholds: np.ndarray  # [n_classes] t_j: mean self-confidence of the windows given j
    flagged: np.ndarray  # [n] bool
    suggested: np.ndarray  # [n] confidently predicted class index; -1 when none
    folds: int  # folds used; 0 when the check could not run (too few sessions or classes)

    def self_confidence(self) -> np.ndarray:
        """p(given label) out of fold; NaN where not judged."""
        out = np.full(len(self.given), np.nan)
        ok = np.flatnonzero(self.given >= 0)
        out[ok] = self.probs[ok, self.given[ok]]
        return out


def out_of_fold_probs(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    n_classes: int,
    folds: int = 5,
    c: float = 0.1,
    seed: int = 0,
    train_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Out-of-fold class probabilities of a multinomial logistic regression, folds by group.

    Only rows in `train_mask` (default all) train the folds' models; every row is predicted.
    Returns (probs [n, n_classes], folds used); a class absent from a fold's training rows
    gets probability 0 in that fold.
    """
    # scikit-learn comes with mlflow; imported here so the gate imports without it
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    if train_mask is None:
        train_mask = np.ones(len(labels), dtype=bool)
    folds = min(folds, len(np.unique(groups)))
    probs = np.zeros((len(labels), n_classes))
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    # One BLAS thread: the matrices are small (thousands x ~300), and threaded BLAS on a busy
    # 2-core machine made the fits 10x slower (3 s -> 30 s for 2,400 windows).
    with threadpool_limits(limits=1):
        for train, test in splitter.split(features, labels, groups):
            train = train[train_mask[train]]
            if len(np.unique(labels[train])) < 2:
                probs[np.ix_(test, np.unique(labels[train]))] = 1.0
                continue
            scaler = StandardScaler().fit(features[train])
            model = LogisticRegression(C=c, max_iter=1000)
            model.fit(scaler.transform(features[train]), labels[train])
            test_x = scaler.transform(features[test])
            probs[np.ix_(test, model.classes_)] = model.predict_proba(test_x)
    return probs, folds


def confident_flags(
    probs: np.ndarray, given: np.ndarray, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flagged, suggested class, thresholds) from the confident joint (Northcutt et al. 2021).

    t_j is the mean p_j over the rows given j; a row's confident class is the most probable of
    the classes with p_j >= t_j. A row is flagged when it has a confident class other than its
    given one and its given class's p is below that class's own threshold (an off-diagonal
    entry of the confident joint).
    """
    thresholds = np.array(
        [probs[given == j, j].mean() if (given == j).any() else 1.0 for j in range(n_classes)]
    )
    above = probs >= thresholds[None, :]
    suggested = np.where(above.any(axis=1), np.where(above, probs, -1.0).argmax(axis=1), -1)
    safe = np.clip(given, 0, None)
    self_conf = probs[np.arange(len(given)), safe]
    flagged = (
        (given >= 0) & (suggested >= 0) & (suggested != given) & (self_conf < thresholds[safe])
    )
    return flagged, suggested, thresholds


def check_labels(
    samples: pd.DataFrame,
    folds: int = 5,
    c: float = 0.1,
    rounds: int = 2,
    modalities: list[str] | None = None,
    features: np.ndarray | None = None,
    seed: int = 0,
) -> LabelCheckResult:
    """Out-of-fold label-consistency check of aligned samples (one row per window, in order).

    Windows with a label in `schema.LABELS` are judged. Round 1 trains on all of them; each
    further round trains only on the windows the previous round did not flag and judges all
    again (a cleaner model lowers the false flags: on the demo at 10% swapped labels precision
    rises from 0.62 to 0.87 at the same recall, docs/validation.md). `features` (from
    `label_features`) may be passed to skip decoding.
    """
    n_classes = len(schema.LABELS)
    labels = samples["label"].astype("string").fillna("").to_numpy()
    given = np.array([schema.LABEL_INDEX.get(x, -1) for x in labels], dtype=np.int64)
    probs = np.full((len(samples), n_classes), np.nan)
    flagged = np.zeros(len(samples), dtype=bool)
    suggested = np.full(len(samples), -1, dtype=np.int64)
    judged = np.flatnonzero(given >= 0)
    groups = samples["session_id"].astype(str).to_numpy()
    if len(np.unique(groups[judged])) < 2 or len(np.unique(given[judged])) < 2:
        return LabelCheckResult(probs, given, np.ones(n_classes), flagged, suggested, 0)
    if features is None:
        features = label_features(samples, modalities)
    x, y, g = features[judged], given[judged], groups[judged]
    keep = np.ones(len(y), dtype=bool)
    for _ in range(max(rounds, 1)):
        p, used = out_of_fold_probs(x, y, g, n_classes, folds, c, seed, train_mask=keep)
        f, s, thresholds = confident_flags(p, y, n_classes)
        keep = ~f
    probs[judged], flagged[judged], suggested[judged] = p, f, s
    return LabelCheckResult(probs, given, thresholds, flagged, suggested, used)


def flagged_rows(samples: pd.DataFrame, result: LabelCheckResult) -> pd.DataFrame:
    """The flagged windows as rejection rows: session_id, window_index, modality, reason."""
    idx = np.flatnonzero(result.flagged)
    conf = result.self_confidence()
    reasons = []
    for i in idx:
        given = schema.LABELS[result.given[i]]
        other = schema.LABELS[result.suggested[i]]
        p_other = result.probs[i, result.suggested[i]]
        reasons.append(
            f"{REASON}: given {given}, out-of-fold p={conf[i]:.3f} ({other} p={p_other:.3f})"
        )
    return pd.DataFrame(
        {
            "session_id": samples["session_id"].to_numpy()[idx],
            "window_index": samples["window_index"].to_numpy()[idx].astype("int64"),
            "modality": pd.array(["labels"] * idx.size, dtype="string"),
            "reason": reasons,
        }
    )
