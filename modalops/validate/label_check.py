"""Label-consistency check: windows whose label their own signals contradict (cleanlab).

Every per-file check passes on a label that is merely wrong (an interval shifted by a second or
two, a class swapped for a confusable one), so the only evidence against it is the payload.
Following Northcutt et al. 2021, "Confident Learning: Estimating Uncertainty in Dataset
Labels" (JAIR 70), a cheap classifier (multinomial logistic regression) is trained on cheap
per-window features out of fold, with the folds split *by session*: a window's own session never
trains the model that judges it, since neighbouring windows are near-copies and label errors
come in runs within one session. The label-issue search on those probabilities is cleanlab's
(`find_label_issues`, prune by noise rate; the hand-written confident joint it replaced flagged
9% of the clean windows of a spoken-digit set, cleanlab plus the "sure" rule below 2%:
benchmarks/label_gate.py). A weak classifier disagrees with correct labels, so a window is
flagged only when cleanlab calls it an issue *and* the classifier is sure of another class, and
the gate reads the noise rate where the classifier is sure, not the raw disagreement.

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
# Largest share of windows cleanlab may call issues for a round to retrain without all of them
# (measured: 10-20% with 10% swaps on the demo and two real sets; 66% for a near-chance model).
MAX_ISSUES_DROPPED = 0.3


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
    """Out-of-fold probabilities and the flagged windows (row order of the samples judged), with
    the noise rates the gate reads (`LabelJudgement`)."""

    probs: np.ndarray  # [n, n_classes] out-of-fold; NaN rows for windows not judged
    given: np.ndarray  # [n] given label index; -1 when not judged (no label, unknown label)
    flagged: np.ndarray  # [n] bool: label issues whose other class the classifier is sure of
    suggested: np.ndarray  # [n] most probable class; -1 when not judged
    folds: int  # folds used; 0 when the check could not run (too few sessions or classes)
    judgement: LabelJudgement | None = None  # None when the check could not run

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


@dataclass
class LabelJudgement:
    """cleanlab's label issues on out-of-fold probabilities, and the ones the classifier is sure
    of (row order of the windows judged)."""

    probs: np.ndarray  # [n, n_classes] out of fold, from the last round
    issues: np.ndarray  # [n] bool: cleanlab's label issues (prune_by_noise_rate)
    flagged: np.ndarray  # [n] bool: issues whose other class the classifier is sure of
    suggested: np.ndarray  # [n] most probable class
    sure_p: float  # p of the other class at or above which an issue is "sure"
    sure_share: float  # share of windows the classifier is sure of (max p >= sure_p)
    noise_rate: float  # cleanlab's estimate from the calibrated confident joint: 1 - trace
    sure_noise_rate: float  # flagged / windows the classifier is sure of: what the gate reads
    oof_accuracy: float  # argmax agrees with the given label, out of fold
    folds: int

    def summary(self) -> str:
        return (
            f"noise {self.sure_noise_rate:.1%} among the {self.sure_share:.0%} of windows judged"
            f" at p>={self.sure_p:.2f} (cleanlab joint: {self.noise_rate:.1%}; out-of-fold"
            f" accuracy {self.oof_accuracy:.0%})"
        )


def judge_labels(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    n_classes: int,
    cfg: ValidateConfig,
    seed: int = 0,
) -> LabelJudgement:
    """cleanlab's label-issue search (Northcutt et al. 2021, `cleanlab.filter.find_label_issues`,
    prune by noise rate) on out-of-fold probabilities, folds by session; each round after the
    first retrains without the previous round's issues.

    A weak classifier disagrees with many correct labels, and cleanlab's issues then include
    them (15% of the clean windows of a noisy spoken-digit set, issue 22). What is flagged is an
    issue whose suggested class the classifier is sure of (p >= `label_check_sure_p`), and the
    noise rate the gate reads is measured where the classifier is sure: flagged windows over
    the windows whose most probable class reaches that p.
    """
    from cleanlab.count import estimate_joint
    from cleanlab.filter import find_label_issues

    keep = np.ones(len(labels), dtype=bool)
    for _ in range(max(cfg.label_check_rounds, 1)):
        probs, used = out_of_fold_probs(
            features, labels, groups, n_classes, cfg.label_check_folds, cfg.label_check_c,
            seed, train_mask=keep, max_fit=cfg.label_check_max_fit_windows,
        )  # fmt: skip
        # rows of a fold that lacked a class sum to < 1; cleanlab wants distributions
        probs = np.clip(probs, 1e-6, None)
        probs /= probs.sum(axis=1, keepdims=True)
        issues = find_label_issues(labels, probs, filter_by="prune_by_noise_rate", n_jobs=1)
        suggested = probs.argmax(axis=1)
        sure = probs.max(axis=1) >= cfg.label_check_sure_p
        flagged = issues & sure & (suggested != labels)
        # The next round trains without this round's issues, unless they are so many that the
        # classifier is the problem: trained only on the windows a weak model agreed with, the
        # next one grows overconfident (a 33%-accurate model then flagged 7.5% of clean
        # synthetic labels as "65% noise"); then only the sure issues are left out.
        keep = ~(issues if issues.mean() <= MAX_ISSUES_DROPPED else flagged)
    joint = estimate_joint(labels, probs)
    return LabelJudgement(
        probs=probs,
        issues=issues,
        flagged=flagged,
        suggested=suggested,
        sure_p=cfg.label_check_sure_p,
        sure_share=float(sure.mean()),
        noise_rate=float(1.0 - np.trace(joint)),
        sure_noise_rate=float(flagged.sum() / max(sure.sum(), 1)),
        oof_accuracy=float((suggested == labels).mean()),
        folds=used,
    )


def check_labels(
    samples: pd.DataFrame,
    spec,
    cfg: ValidateConfig | None = None,
    streams: list[str] | None = None,
    features: np.ndarray | None = None,
    seed: int = 0,
) -> LabelCheckResult:
    """Out-of-fold label-consistency check of aligned samples (one row per window, in order).

    Windows with a label among the spec's classes are judged (`judge_labels`, with `cfg`'s
    folds, rounds, C, fit cap and sure p; defaults: `ValidateConfig()`). `features` (from
    `label_features`) may be passed to skip decoding.
    """
    cfg = cfg or ValidateConfig()
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
        return LabelCheckResult(probs, given, flagged, suggested, 0)
    if features is None:
        features = label_features(samples, spec, streams)
    # no copy of the features when every window is judged (the usual case)
    x = features if len(judged) == len(features) else features[judged]
    verdict = judge_labels(x, given[judged], groups[judged], n_classes, cfg, seed)
    probs[judged], flagged[judged] = verdict.probs, verdict.flagged
    suggested[judged] = verdict.suggested
    return LabelCheckResult(probs, given, flagged, suggested, verdict.folds, verdict)


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
    expected = (
        f"estimated label noise ≤ {pct(cfg.max_bad_fraction)} (sure label issues among the"
        " windows the check's classifier is sure of)"
    )
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
    result = check_labels(judged, spec, cfg, streams=streams, features=features)
    n_judged = int((result.given >= 0).sum())
    if result.folds == 0:
        return CheckResult(
            name, "samples", f"skipped: {n_judged} labelled windows in < 2 sessions or classes",
            expected, severity, True,
        ), empty  # fmt: skip
    flagged = flagged_rows(judged, result, classes)
    verdict = result.judgement
    per_class = pd.Series([classes[i] for i in result.given[result.flagged]]).value_counts()
    details = (
        f"{result.folds} folds by session, {cfg.label_check_rounds} round(s), streams "
        f"{'+'.join(streams)}; {verdict.summary()}; {int(verdict.issues.sum())} cleanlab "
        f"issues, {len(flagged)} of them sure (other class p>={cfg.label_check_sure_p:g})"
    )
    if n_judged > cfg.label_check_max_fit_windows:
        details += f"; fits capped at {cfg.label_check_max_fit_windows} windows a fold"
    if len(per_class):
        details += "; flagged " + ", ".join(f"{k} {v}" for k, v in per_class.items())
    return CheckResult(
        name,
        "samples",
        f"estimated noise {pct(verdict.sure_noise_rate)}; {len(flagged)} of {n_judged} flagged"
        f" ({pct(len(flagged) / max(n_judged, 1))})",
        expected,
        severity,
        verdict.sure_noise_rate <= cfg.max_bad_fraction,
        details,
    ), flagged
