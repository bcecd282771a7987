"""Classical baselines on the same split: hand features per stream, scikit-learn models, fused.

Windows are cut on the reference clock and each stream is read through its *true* clock (the
scorer's truth files): the baselines say what the recordings allow when alignment is perfect.
Time series: per-channel mean, std, min, max and the magnitude's mean and std, random forest.
Audio: MFCC-like statistics (mean and std of 20 log band energies and their deltas), RBF SVM.
Frames: the frame at the window's centre, 8x8 grey pixels, logistic regression.
Fused: late fusion by the product rule (the sum of the per-stream models' log-probabilities).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from benchmarks.real.compose import CaseOutput, read_truth, read_wav


def _windows(labels: pd.DataFrame, duration: float, window_s: float, hop_s: float):
    """(start, label) of windows that one label covers at least 3/4 of."""
    for t in np.arange(0.0, duration - window_s + 1e-9, hop_s):
        cover = (np.minimum(labels["end_s"], t + window_s) - np.maximum(labels["start_s"], t)).clip(
            lower=0
        )
        i = int(np.argmax(cover.to_numpy()))
        if cover.iloc[i] >= 0.75 * window_s:
            yield float(t), str(labels["label"].iloc[i])


def _ts_features(df: pd.DataFrame, channels: list[str], t0: float, t1: float) -> np.ndarray:
    v = df.loc[(df["t"] >= t0) & (df["t"] < t1), channels].to_numpy(float)
    if v.shape[0] < 2:
        return np.full(4 * len(channels) + 2, np.nan)
    m = np.linalg.norm(v - v.mean(0), axis=1)
    return np.concatenate([v.mean(0), v.std(0), v.min(0), v.max(0), [m.mean(), m.std()]])


def _audio_features(x: np.ndarray, rate: int, s0: float, s1: float) -> np.ndarray:
    seg = x[max(int(s0 * rate), 0) : max(int(s1 * rate), 0)]
    hop, win = rate // 100, rate // 40
    if seg.size < win * 2:
        return np.full(80, np.nan)
    frames = np.lib.stride_tricks.sliding_window_view(seg, win)[::hop] * np.hanning(win)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    f = np.fft.rfftfreq(win, 1 / rate)
    edges = np.geomspace(100, 0.45 * rate, 21)
    bands = np.stack(
        [spec[:, (f >= a) & (f < b)].sum(1) for a, b in zip(edges[:-1], edges[1:], strict=True)], 1
    )
    logb = np.log(bands + 1e-10)
    delta = np.diff(logb, axis=0)
    return np.concatenate([logb.mean(0), logb.std(0), delta.mean(0), delta.std(0)])


def _frame_features(frames: pd.DataFrame, folder: Path, t: float) -> np.ndarray:
    i = int(np.argmin(np.abs(frames["t"].to_numpy() - t)))
    with Image.open(folder / frames["file"].iloc[i]) as img:
        return (
            np.asarray(img.convert("L").resize((8, 8), Image.BILINEAR), dtype=float).ravel() / 255
        )


def features(
    case: CaseOutput, window_s: float, hop_s: float, splits: dict[str, str] | None = None
) -> pd.DataFrame:
    """One row per window: session, split, label and each stream's features (true clocks).
    `splits` (session id -> 'train' / 'test') replaces the sessions table's archive split, e.g.
    with the split of the platform's own dataset version; sessions it leaves out are dropped."""
    spec = yaml.safe_load((case.raw / "dataset.yaml").read_text())
    rows = []
    for sess in case.sessions.to_dict("records"):
        sid = str(sess["session_id"])
        folder = case.raw / "sessions" / sid
        truth = read_truth(case.truth, sid)
        labels = pd.read_csv(folder / "labels.csv")
        loaded = {}
        for name, s in spec["streams"].items():
            if s["kind"] == "timeseries":
                loaded[name] = pd.read_csv(folder / s["path"])
            elif s["kind"] == "audio":
                loaded[name] = read_wav((folder / s["path"]).read_bytes())
            elif s["kind"] == "image":
                loaded[name] = pd.read_csv(folder / s["path"])
        duration = float(labels["end_s"].max())
        for t, label in _windows(labels, duration, window_s, hop_s):
            split = sess.get("archive_split", "") if splits is None else splits.get(sid, "")
            row = {"session_id": sid, "split": split, "label": label}
            for name, s in spec["streams"].items():
                clock = truth.get(name)
                d0, d1 = (
                    (t, t + window_s)
                    if clock is None
                    else (clock.to_device(t), clock.to_device(t + window_s))
                )
                if s["kind"] == "timeseries":
                    f = _ts_features(loaded[name], s["params"]["channels"], d0, d1)
                elif s["kind"] == "audio":
                    x, rate = loaded[name]
                    f = _audio_features(x, rate, d0, d1)
                else:
                    f = _frame_features(loaded[name], folder, 0.5 * (d0 + d1))
                row[name] = f
            rows.append(row)
    return pd.DataFrame(rows)


def _model(kind: str):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if kind == "audio":
        # probabilities for the late fusion, calibrated on held-out folds of the training set
        svc = CalibratedClassifierCV(SVC(C=10.0, gamma="scale"), ensemble=False)
        return make_pipeline(StandardScaler(), svc)
    if kind == "image":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    return RandomForestClassifier(n_estimators=200, random_state=0, n_jobs=1)


def evaluate(
    case: CaseOutput, window_s: float, hop_s: float, splits: dict[str, str] | None = None
) -> dict[str, float]:
    """Macro-F1 on the test split of each stream's model and of their late fusion (the product
    rule: the sum of the streams' log-probabilities, floored at 1e-3)."""
    from sklearn.metrics import f1_score

    spec = yaml.safe_load((case.raw / "dataset.yaml").read_text())
    df = features(case, window_s, hop_s, splits)
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    out = {"train_windows": len(train), "test_windows": len(test)}
    log_p, classes = 0.0, None
    for name, s in spec["streams"].items():
        x_train = np.nan_to_num(np.stack(train[name].to_list()))
        x_test = np.nan_to_num(np.stack(test[name].to_list()))
        model = _model(s["kind"]).fit(x_train, train["label"])
        out[name] = float(f1_score(test["label"], model.predict(x_test), average="macro"))
        classes = model.classes_ if classes is None else classes
        log_p = log_p + np.log(model.predict_proba(x_test) + 1e-3)
    out["fused"] = float(
        f1_score(test["label"], classes[np.argmax(log_p, axis=1)], average="macro")
    )
    return out
