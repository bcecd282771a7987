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

The features know nothing about the scenario: each stream's kind gives cheap per-window features
(`label_features` in modalops/kinds/<kind>/checks.py: an 8x8 thumbnail of a frame, log band
energies of audio, per-channel log spectral band energies of a table, hashed text tokens), and,
since recordings differ per station while a label is about what changes within one, says how
they are taken relative to their session (`session_relative`: the change from the session's
median frame; the difference from the session median). A missing stream gives a zero block and a
presence flag of 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from modalops.config.validate import ValidateConfig
from modalops.validate.result import CheckResult, pct, severity_for
from modalops.validate.stats import known_streams, presence, stream_payloads

REASON = "label_inconsistent"  # the quarantine reason of a flagged window (its prefix)
LABELS_STREAM = "labels"  # the quarantine `stream` of a flagged window: its label is blamed
PREDICT_CHUNK = 20_000  # held-out rows scored at a time


# ---- features --------------------------------------------------------------------------------


def _session_median(block: np.ndarray, sessions: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Per row, the median of its session's present rows (zeros for absent rows)."""
    out = np.zeros_like(block)
    for sid in np.unique(sessions[present]):
        rows = (sessions == sid) & present
        out[rows] = np.median(block[rows], axis=0)
    return out


LabelFeatures = dict[str, list]
"""Per stream, one raw feature vector per row (its kind's `label_features`; None where the row does
not carry the stream or it does not decode). Small, and free of payloads: what the gate keeps of
the samples when it streams them a part at a time (modalops/validate/evidence.py)."""


def raw_label_features(
    samples: pd.DataFrame, spec, streams: list[str] | None = None
) -> LabelFeatures:
    """Each stream's raw per-window features (not yet session-relative), row-aligned."""
    n = len(samples)
    window = (
        (samples["t_end"].astype(float) - samples["t_start"].astype(float)).to_numpy()
        if {"t_start", "t_end"} <= set(samples.columns)
        else np.ones(n)
    )
    out: LabelFeatures = {}
    for stream in streams or spec.stream_names:
        kind, params = spec.kind_of(stream), spec.params(stream)
        mask = presence(samples, stream)
        feats = []
        for i, payload in enumerate(stream_payloads(samples, stream, mask)):
            f = (
                None
                if payload is None
                else kind.checks.label_features(payload, params, float(window[i]))
            )
            feats.append(None if f is None else np.asarray(f, dtype=np.float32).ravel())
        out[stream] = feats
    return out


def _stack(feats: list) -> tuple[np.ndarray, np.ndarray]:
    """(features [n, dim], present [n]); dim from the first decodable row, rows of another size
    or with a non-finite value count as absent."""
    dim = next((f.size for f in feats if f is not None), 0)
    n = len(feats)
    block = np.zeros((n, dim), dtype=np.float32)
    present = np.zeros(n, dtype=bool)
    for i, f in enumerate(feats):
        if f is not None and f.size == dim and np.isfinite(f).all():
            block[i], present[i] = f, True
    return block, present


def relative_features(raw: LabelFeatures, sessions: np.ndarray, spec) -> np.ndarray:
    """[n, d] float32 features from raw ones: per stream, its kind's session-relative blocks plus
    its presence flag (a zero block when absent); `sessions` is each row's session id."""
    blocks = []
    n = len(sessions)
    for stream, feats in raw.items():
        block, present = _stack(feats)
        if block.shape[1]:
            median = partial(_session_median, sessions=sessions, present=present)
            blocks += spec.kind_of(stream).checks.session_relative(block, present, median)
        blocks.append(present[:, None].astype(np.float32))
    return (
        np.concatenate(blocks, axis=1).astype(np.float32, copy=False)
        if blocks
        else np.zeros((n, 0), np.float32)
    )


def label_features(samples: pd.DataFrame, spec, streams: list[str] | None = None) -> np.ndarray:
    """[n, d] float32 features of the aligned samples: per stream (default: every stream of the
    spec), its kind's session-relative blocks plus its presence flag (a zero block when absent).
    """
    raw = raw_label_features(samples, spec, streams)
    return relative_features(raw, samples["session_id"].astype(str).to_numpy(), spec)


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
    max_fit: int | None = None,
) -> tuple[np.ndarray, int]:
    """Out-of-fold class probabilities of a multinomial logistic regression, folds by group.

    Only rows in `train_mask` (default all) train the folds' models; every row is predicted.
    A fold with more than `max_fit` training rows trains on a random subsample of that many
    (drawn from `seed` and the fold's number, so a rerun draws the same): the fit's memory
    (about 3x its feature matrix) then stays bounded however many windows there are.
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
        for fold, (train, test) in enumerate(splitter.split(features, labels, groups)):
            train = train[train_mask[train]]
            if max_fit is not None and len(train) > max_fit:
                rng = np.random.default_rng([seed, fold])
                train = np.sort(rng.choice(train, size=max_fit, replace=False))
            if len(np.unique(labels[train])) < 2:
                probs[np.ix_(test, np.unique(labels[train]))] = 1.0
                continue
            scaler = StandardScaler().fit(features[train])
            model = LogisticRegression(C=c, max_iter=1000)
            model.fit(scaler.transform(features[train]), labels[train])
            # predicted in chunks: a fold's held-out rows grow with the data, its fit does not
            for start in range(0, len(test), PREDICT_CHUNK):
                rows = test[start : start + PREDICT_CHUNK]
                probs[np.ix_(rows, model.classes_)] = model.predict_proba(
                    scaler.transform(features[rows])
                )
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
    spec,
    folds: int = 5,
    c: float = 0.1,
    rounds: int = 2,
    streams: list[str] | None = None,
    features: np.ndarray | None = None,
    seed: int = 0,
    max_fit: int | None = None,
) -> LabelCheckResult:
    """Out-of-fold label-consistency check of aligned samples (one row per window, in order).

    Windows with a label among the spec's classes are judged. Round 1 trains on all of them; each
    further round trains only on the windows the previous round did not flag and judges all
    again (a cleaner model lowers the false flags: on the demo at 10% swapped labels precision
    rises from 0.62 to 0.87 at the same recall, docs/validation.md). `features` (from
    `label_features`) may be passed to skip decoding; `max_fit` caps the windows each fold's
    model trains on (`out_of_fold_probs`), every window is still judged.
    """
    index = spec.labels.index()
    n_classes = len(index)
    labels = samples["label"].astype("string").fillna("").to_numpy()
    given = np.array([index.get(x, -1) for x in labels], dtype=np.int64)
    probs = np.full((len(samples), n_classes), np.nan)
    flagged = np.zeros(len(samples), dtype=bool)
    suggested = np.full(len(samples), -1, dtype=np.int64)
    judged = np.flatnonzero(given >= 0)
    groups = samples["session_id"].astype(str).to_numpy()
    if len(np.unique(groups[judged])) < 2 or len(np.unique(given[judged])) < 2:
        return LabelCheckResult(probs, given, np.ones(n_classes), flagged, suggested, 0)
    if features is None:
        features = label_features(samples, spec, streams)
    # no copy of the features when every window is judged (the usual case)
    x = features if len(judged) == len(features) else features[judged]
    y, g = given[judged], groups[judged]
    keep = np.ones(len(y), dtype=bool)
    for _ in range(max(rounds, 1)):
        p, used = out_of_fold_probs(
            x, y, g, n_classes, folds, c, seed, train_mask=keep, max_fit=max_fit
        )
        f, s, thresholds = confident_flags(p, y, n_classes)
        keep = ~f
    probs[judged], flagged[judged], suggested[judged] = p, f, s
    return LabelCheckResult(probs, given, thresholds, flagged, suggested, used)


def flagged_rows(
    samples: pd.DataFrame, result: LabelCheckResult, classes: list[str]
) -> pd.DataFrame:
    """The flagged windows as rejection rows: session_id, window_index, stream, reason."""
    idx = np.flatnonzero(result.flagged)
    conf = result.self_confidence()
    reasons = []
    for i in idx:
        given = classes[result.given[i]]
        other = classes[result.suggested[i]]
        p_other = result.probs[i, result.suggested[i]]
        reasons.append(
            f"{REASON}: given {given}, out-of-fold p={conf[i]:.3f} ({other} p={p_other:.3f})"
        )
    return pd.DataFrame(
        {
            "session_id": samples["session_id"].to_numpy()[idx],
            "window_index": samples["window_index"].to_numpy()[idx].astype("int64"),
            "stream": pd.array([LABELS_STREAM] * idx.size, dtype="string"),
            "reason": reasons,
        }
    )


# ---- in the gate -----------------------------------------------------------------------------


def key_mask(table: pd.DataFrame, keys: set) -> np.ndarray:
    """Rows of `table` whose (session_id, window_index) is in `keys`."""
    if not keys:
        return np.zeros(len(table), dtype=bool)
    idx = pd.MultiIndex.from_arrays([table["session_id"], table["window_index"]])
    return idx.isin(list(keys))


def label_check_streams(spec, cfg: ValidateConfig) -> list[str]:
    """The streams feeding the check: cfg.label_check_streams, else every stream of the spec."""
    return known_streams(spec, cfg.label_check_streams or spec.stream_names, "label_check_streams")


def label_consistency_check(
    samples: pd.DataFrame,
    rejected: pd.DataFrame,
    spec,
    cfg: ValidateConfig,
    raw: LabelFeatures | None = None,
) -> tuple[CheckResult, pd.DataFrame]:
    """Flag windows whose label their signals contradict; (verdict row, rejection rows).

    Windows already rejected by a per-sample rule are left out (their payloads are broken, so
    they would only teach the check's model noise); so are windows without a label. `samples`
    needs session_id, window_index and label; its payloads are decoded unless `raw`
    (`raw_label_features` of the same rows, for the check's streams) is given, and then the
    payloads are not needed (the statistics table will do).
    """
    name = "label_consistency"
    severity = severity_for(name, "fail", cfg)
    expected = f"≤ {pct(cfg.max_bad_fraction)} of labelled windows contradicted by their signals"
    empty = pd.DataFrame(columns=["session_id", "window_index", "stream", "reason"])
    streams = label_check_streams(spec, cfg)
    classes = list(spec.labels.classes)
    bad = set(zip(rejected["session_id"], rejected["window_index"], strict=True))
    keep = ~key_mask(samples, bad)
    judged = samples[keep].reset_index(drop=True)
    n_labelled = int(judged["label"].isin(classes).sum()) if "label" in judged else 0
    if n_labelled < cfg.label_check_min_windows:
        return CheckResult(
            name, "samples",
            f"skipped: {n_labelled} labelled windows < label_check_min_windows "
            f"{cfg.label_check_min_windows}",
            expected, severity, True,
        ), empty  # fmt: skip
    features = None
    if raw is not None:
        missing = [s for s in streams if s not in raw]
        if missing:
            raise ValueError(
                f"label check: no raw features were gathered for stream(s) {missing} "
                "(gather the evidence with the same validation config)"
            )
        rows = np.flatnonzero(keep)
        mine = {s: [raw[s][i] for i in rows] for s in streams}
        features = relative_features(mine, judged["session_id"].astype(str).to_numpy(), spec)
    result = check_labels(
        judged, spec, folds=cfg.label_check_folds, c=cfg.label_check_c,
        rounds=cfg.label_check_rounds, streams=streams, features=features,
        max_fit=cfg.label_check_max_fit_windows,
    )  # fmt: skip
    n_judged = int((result.given >= 0).sum())
    if result.folds == 0:
        return CheckResult(
            name, "samples", f"skipped: {n_judged} labelled windows in < 2 sessions or classes",
            expected, severity, True,
        ), empty  # fmt: skip
    flagged = flagged_rows(judged, result, classes)
    share = len(flagged) / max(n_judged, 1)
    per_class = pd.Series([classes[i] for i in result.given[result.flagged]]).value_counts()
    thresholds = ", ".join(f"{k} {t:.2f}" for k, t in zip(classes, result.thresholds, strict=True))
    details = (
        f"{result.folds} folds by session, {cfg.label_check_rounds} round(s), streams "
        f"{'+'.join(streams)}; t_j {thresholds}"
    )
    if n_judged > cfg.label_check_max_fit_windows:
        details += f"; fits capped at {cfg.label_check_max_fit_windows} windows a fold"
    if len(per_class):
        details += "; flagged " + ", ".join(f"{k} {v}" for k, v in per_class.items())
    return CheckResult(
        name,
        "samples",
        f"{len(flagged)} of {n_judged} flagged ({pct(share)} of labelled windows)",
        expected,
        severity,
        share <= cfg.max_bad_fraction,
        details,
    ), flagged
