"""Held-out evaluation of the fused and single-stream models: scores, slices, calibration, abstention, cost.

The test split is used only for reported scores; the validation split only for fitting the
temperature and choosing the abstention threshold (fitting either on test would leak). Classes,
slices and the streams dropped for robustness come from the dataset spec, never from constants.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd

from modalops.config.evaluate import EvaluateConfig
from modalops.evaluate import metrics, stress
from modalops.evaluate.result import EvaluationReport, StressResult
from modalops.store import ObjectStore, join_key
from modalops.train import FUSED_ID


@dataclass
class SplitTruth:
    """Labels, session ids (bootstrap groups) and metadata of one split, in sample order."""

    labels: np.ndarray
    groups: np.ndarray
    meta: pd.DataFrame

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.groups = np.asarray(self.groups)
        if not (len(self.labels) == len(self.groups) == len(self.meta)):
            raise ValueError(
                f"split has {len(self.labels)} labels, {len(self.groups)} groups and "
                f"{len(self.meta)} metadata rows; they must match"
            )


@dataclass
class ModelOutputs:
    """One model's predicted probabilities on val and test, plus what it costs to run."""

    model_id: str
    streams: list[str]
    val_probs: np.ndarray
    test_probs: np.ndarray
    n_params: int = 0
    latency_ms: list[float] = field(default_factory=list)  # per-sample wall time, batch size 1
    # test probabilities with one stream removed, keyed by the removed stream (fused only)
    removed: dict[str, np.ndarray] = field(default_factory=dict)
    # test probabilities with one stream's tensors replaced by noise, keyed likewise
    noised: dict[str, np.ndarray] = field(default_factory=dict)


# ---- pure computation on predictions -----------------------------------------------------------


def _f1_of(n_classes: int):
    def f1(t: np.ndarray, p: np.ndarray) -> float:
        return metrics.macro_f1(t, p, n_classes)

    return f1


def _lift_of(n_classes: int):
    f1 = _f1_of(n_classes)

    def lift(t: np.ndarray, pair: np.ndarray) -> float:
        return f1(t, pair[:, 0]) - f1(t, pair[:, 1])

    return lift


def _model_row(
    out: ModelOutputs, test: SplitTruth, cfg: EvaluateConfig, n_classes: int
) -> tuple[dict[str, Any], np.ndarray]:
    pred = out.test_probs.argmax(axis=1)
    lo, hi = metrics.bootstrap_ci(
        _f1_of(n_classes), test.labels, pred, n_boot=cfg.n_boot, seed=cfg.seed, groups=test.groups
    )
    lat = np.asarray(out.latency_ms, dtype=np.float64)
    mean_s = float(lat.mean()) / 1000.0 if lat.size else float("nan")
    row = {
        "model_id": out.model_id,
        "streams": ",".join(out.streams),
        "macro_f1": metrics.macro_f1(test.labels, pred, n_classes),
        "macro_f1_lo": lo,
        "macro_f1_hi": hi,
        "accuracy": metrics.accuracy(test.labels, pred),
        "ece": metrics.ece(out.test_probs, test.labels, cfg.ece_bins),
        "n_params": int(out.n_params),
        "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
        # Mean (not median) time per sample: cost follows throughput, which the tail pays for too.
        "cost_per_1k_usd": cfg.hourly_price_usd / 3600.0 * mean_s * 1000.0,
    }
    return row, pred


def slice_table(
    probs: np.ndarray,
    truth: SplitTruth,
    threshold: float,
    cfg: EvaluateConfig,
    slices: Sequence[str],
) -> pd.DataFrame:
    """Per value of every slice column: n, macro-F1, error rate (with CIs), ECE, abstention."""
    n_classes = probs.shape[1]
    f1_fn = _f1_of(n_classes)
    pred = probs.argmax(axis=1)
    overall = metrics.macro_f1(truth.labels, pred, n_classes)
    conf = probs.max(axis=1)
    rows = []
    for column in slices:
        if column not in truth.meta.columns:
            continue  # a declared slice the data lacks is reported in the headline, not fatal
        values = truth.meta[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            m = values == value
            t, p, g = truth.labels[m], pred[m], truth.groups[m]
            f1 = metrics.macro_f1(t, p, n_classes)
            f1_lo, f1_hi = metrics.bootstrap_ci(
                f1_fn, t, p, n_boot=cfg.n_boot, seed=cfg.seed, groups=g
            )
            err_lo, err_hi = metrics.bootstrap_ci(
                metrics.error_rate, t, p, n_boot=cfg.n_boot, seed=cfg.seed, groups=g
            )
            n = int(m.sum())
            rows.append(
                {
                    "column": column,
                    "value": value,
                    "n": n,
                    "n_sessions": len(set(g.tolist())),
                    "macro_f1": f1,
                    "macro_f1_lo": f1_lo,
                    "macro_f1_hi": f1_hi,
                    "error_rate": metrics.error_rate(t, p),
                    "error_rate_lo": err_lo,
                    "error_rate_hi": err_hi,
                    "ece": metrics.ece(probs[m], t, cfg.ece_bins),
                    "abstention_rate": float((conf[m] < threshold).mean()),
                    "coverage": float((conf[m] >= threshold).mean()),
                    "gap": overall - f1,
                    "flagged": bool(n >= cfg.min_slice_n and overall - f1 > cfg.slice_margin),
                }
            )
    cols = ["column", "value", "n", "n_sessions", "macro_f1", "macro_f1_lo", "macro_f1_hi"]
    cols += ["error_rate", "error_rate_lo", "error_rate_hi", "ece", "abstention_rate"]
    cols += ["coverage", "gap", "flagged"]
    return pd.DataFrame(rows, columns=cols)


def build_report(
    outputs: Sequence[ModelOutputs],
    val: SplitTruth,
    test: SplitTruth,
    cfg: EvaluateConfig,
    labels: Sequence[str],
    slices: Sequence[str] | None = None,
    fused_id: str = FUSED_ID,
    extra_headline: Mapping[str, Any] | None = None,
) -> EvaluationReport:
    """Compute every table of the report from predicted probabilities (no models, no I/O).

    `labels` are the spec's classes in index order; `slices` the metadata columns evaluated as
    slices (default: `cfg.slices`, else none).
    """
    labels = list(labels)
    n_classes = len(labels)
    slice_columns = list(slices if slices is not None else (cfg.slices or []))
    by_id = {o.model_id: o for o in outputs}
    if fused_id not in by_id:
        raise ValueError(f"no model {fused_id!r} among {sorted(by_id)}; the report centres on it")
    fused = by_id[fused_id]
    for o in outputs:
        if len(o.test_probs) != len(test.labels) or len(o.val_probs) != len(val.labels):
            raise ValueError(
                f"model {o.model_id}: {len(o.val_probs)}/{len(o.test_probs)} val/test predictions "
                f"for {len(val.labels)}/{len(test.labels)} samples"
            )
        if o.test_probs.shape[1] != n_classes or o.val_probs.shape[1] != n_classes:
            raise ValueError(
                f"model {o.model_id}: predictions have {o.test_probs.shape[1]} classes, the "
                f"dataset spec declares {n_classes} ({labels})"
            )

    rows, preds, per_class, confusion = [], {}, [], {}
    for o in outputs:
        row, pred = _model_row(o, test, cfg, n_classes)
        rows.append(row)
        preds[o.model_id] = pred
        pc = metrics.per_class_prf(test.labels, pred, n_classes, labels)
        pc.insert(0, "model_id", o.model_id)
        per_class.append(pc)
        confusion[o.model_id] = metrics.confusion(test.labels, pred, n_classes).tolist()
    models_df = pd.DataFrame(rows)

    # Fusion lift over the best unimodal model, with a paired (same resample) session bootstrap.
    uni = models_df[models_df["model_id"] != fused_id]
    fused_f1 = float(models_df.loc[models_df["model_id"] == fused_id, "macro_f1"].iloc[0])
    best_uni, lift, lift_lo, lift_hi = None, float("nan"), float("nan"), float("nan")
    if not uni.empty:
        best = uni.sort_values("macro_f1", ascending=False).iloc[0]
        best_uni = str(best["model_id"])
        lift = fused_f1 - float(best["macro_f1"])
        pair = np.stack([preds[fused_id], preds[best_uni]], axis=1)
        lift_lo, lift_hi = metrics.bootstrap_ci(
            _lift_of(n_classes),
            test.labels,
            pair,
            n_boot=cfg.n_boot,
            seed=cfg.seed,
            groups=test.groups,
        )

    # Missing-stream robustness: the fused model with each stream removed in turn.
    robustness = pd.DataFrame(
        [
            {
                "removed": m,
                "macro_f1": metrics.macro_f1(test.labels, p.argmax(axis=1), n_classes),
                "accuracy": metrics.accuracy(test.labels, p.argmax(axis=1)),
                "drop": fused_f1 - metrics.macro_f1(test.labels, p.argmax(axis=1), n_classes),
            }
            for m, p in fused.removed.items()
        ],
        columns=["removed", "macro_f1", "accuracy", "drop"],
    )

    # Calibration: temperature fitted on validation, measured on test.
    val_logits = metrics.probs_to_logits(fused.val_probs)
    test_logits = metrics.probs_to_logits(fused.test_probs)
    temperature = metrics.fit_temperature(val_logits, val.labels) if cfg.calibrate else 1.0
    test_cal = metrics.softmax(test_logits, temperature)
    val_cal = metrics.softmax(val_logits, temperature)
    calibration = {
        "temperature": temperature,
        "fitted_on": "val",
        "ece_before": metrics.ece(fused.test_probs, test.labels, cfg.ece_bins),
        "ece_after": metrics.ece(test_cal, test.labels, cfg.ece_bins),
        "nll_before": metrics.nll(fused.test_probs, test.labels),
        "nll_after": metrics.nll(test_cal, test.labels),
        "val_ece_before": metrics.ece(fused.val_probs, val.labels, cfg.ece_bins),
        "val_ece_after": metrics.ece(val_cal, val.labels, cfg.ece_bins),
    }
    rel_before = metrics.reliability_table(fused.test_probs, test.labels, cfg.ece_bins)
    rel_after = metrics.reliability_table(test_cal, test.labels, cfg.ece_bins)
    reliability = pd.concat(
        [rel_before.assign(stage="before"), rel_after.assign(stage="after")], ignore_index=True
    )

    # Abstention: threshold on calibrated validation confidence, coverage measured on test.
    kw = (
        {"target_precision": cfg.abstention_value}
        if cfg.abstention_target == "precision"
        else {"max_risk": cfg.abstention_value}
    )
    threshold = metrics.choose_threshold(val_cal, val.labels, **kw)
    test_risk = metrics.selective_risk(test_cal, test.labels, threshold)
    abstention = {
        "target": cfg.abstention_target,
        "value": cfg.abstention_value,
        "threshold": threshold,
        "val_coverage": metrics.coverage(val_cal, threshold),
        "val_risk": metrics.selective_risk(val_cal, val.labels, threshold),
        "test_coverage": metrics.coverage(test_cal, threshold),
        "test_risk": test_risk,
        "test_selective_accuracy": 1.0 - test_risk,
    }
    coverage_risk = metrics.coverage_risk_curve(test_cal, test.labels)
    temperature_and_threshold = stress.Calibration(temperature, threshold)
    baselines = {o.model_id: (o.streams, o.test_probs) for o in outputs if o.model_id != fused_id}
    stress_result = StressResult(
        stream_loss=stress.stream_loss_table(
            fused.removed, fused.noised, baselines, test.labels, temperature_and_threshold,
            cfg.ece_bins,
        ),
        skipped=stress.loss_skips(fused.streams, cfg),
    )  # fmt: skip

    slices = slice_table(test_cal, test, threshold, cfg, slice_columns)
    worst = slices[slices["n"] >= cfg.min_slice_n].sort_values("macro_f1").head(1)
    fused_row = models_df[models_df["model_id"] == fused_id].iloc[0]
    headline: dict[str, Any] = {
        "fused_model": fused_id,
        "fused_macro_f1": fused_f1,
        "fused_macro_f1_lo": float(fused_row["macro_f1_lo"]),
        "fused_macro_f1_hi": float(fused_row["macro_f1_hi"]),
        "fused_accuracy": float(fused_row["accuracy"]),
        "best_unimodal": best_uni,
        "best_unimodal_macro_f1": None if uni.empty else float(uni["macro_f1"].max()),
        "lift": lift,
        "lift_lo": lift_lo,
        "lift_hi": lift_hi,
        "worst_slice": None
        if worst.empty
        else f"{worst.iloc[0]['column']}={worst.iloc[0]['value']}",
        "worst_slice_macro_f1": None if worst.empty else float(worst.iloc[0]["macro_f1"]),
        "worst_slice_n": None if worst.empty else int(worst.iloc[0]["n"]),
        "n_flagged_slices": int(slices["flagged"].sum()) if not slices.empty else 0,
        "missing_slice_columns": [c for c in slice_columns if c not in test.meta.columns],
        "ece_before": calibration["ece_before"],
        "ece_after": calibration["ece_after"],
        "temperature": temperature,
        "abstention_threshold": threshold,
        "coverage": abstention["test_coverage"],
        "selective_accuracy": abstention["test_selective_accuracy"],
        "latency_p50_ms": float(fused_row["latency_p50_ms"]),
        "latency_p95_ms": float(fused_row["latency_p95_ms"]),
        "cost_per_1k_usd": float(fused_row["cost_per_1k_usd"]),
        "n_test": int(len(test.labels)),
        "n_test_sessions": len(set(test.groups.tolist())),
        "n_val": int(len(val.labels)),
    }
    headline.update(extra_headline or {})
    return EvaluationReport(
        headline=headline,
        models=models_df,
        slices=slices,
        per_class=pd.concat(per_class, ignore_index=True),
        confusion=confusion,
        robustness=robustness,
        calibration=calibration,
        reliability=reliability,
        abstention=abstention,
        coverage_risk=coverage_risk,
        labels=labels,
        stress=stress_result,
    )


def headline_metrics(report: EvaluationReport) -> dict[str, float]:
    """Numeric headline values for MLflow (`eval.` names; None/NaN left out)."""
    out = {}
    for k, v in report.headline.items():
        numeric = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
        if numeric and math.isfinite(float(v)):
            out[f"eval.{k}"] = float(v)
    for r in report.models.to_dict("records"):
        for k in ("macro_f1", "accuracy", "ece"):
            if r[k] is not None and math.isfinite(float(r[k])):
                out[f"eval.{r['model_id']}.{k}"] = float(r[k])
    return out


# ---- models → predictions ---------------------------------------------------------------------


def session_of(key: str) -> str:
    """Session id of a sample key `<session>__<window>`."""
    return key.rsplit("__", 1)[0]


def truth_from_samples(samples: Sequence[Mapping[str, Any]]) -> SplitTruth:
    """Labels, sessions and metadata of raw samples as yielded by shard.iter_raw_samples."""
    labels = np.array([int(s["label_index"]) for s in samples], dtype=np.int64)
    groups = np.array(
        [str(s.get("meta", {}).get("session_id") or session_of(s["key"])) for s in samples]
    )
    meta = pd.DataFrame([dict(s.get("meta") or {}) for s in samples], index=range(len(samples)))
    return SplitTruth(labels=labels, groups=groups, meta=meta)


def test_sample_keys(truth: SplitTruth) -> list[str]:
    """Sample keys (`<session>__<window>`) of a split read from shards, in sample order."""
    from modalops.dataset.columns import sample_key

    if "window_index" not in truth.meta.columns:
        return []
    windows = truth.meta["window_index"].tolist()
    return [sample_key(str(g), int(w)) for g, w in zip(truth.groups, windows, strict=True)]


def drop_stream(sample: Mapping[str, Any], stream: str) -> dict[str, Any]:
    """A copy of a raw sample with `stream` absent (as if its device had recorded nothing)."""
    out = dict(sample)
    out["streams"] = {**dict(sample.get("streams") or {}), stream: None}
    return out


def count_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def time_per_sample(predict, samples: Sequence[Mapping[str, Any]], n: int) -> list[float]:
    """Wall milliseconds of `predict([sample])` for up to n samples, after one warm-up call."""
    chosen = list(samples[:n])
    if not chosen:
        return []
    predict(chosen[:1])  # warm-up: first call pays lazy init (allocator, kernels)
    out = []
    for s in chosen:
        t0 = time.perf_counter()
        predict([s])
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def iter_batches(samples: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of `size` items (the last may be shorter), pulled lazily from `samples`.

    The previous batch is released before the next is filled, so a consumer that drops its own
    reference (`del batch`) holds at most `size` items at a time."""
    it = iter(samples)
    while batch := list(islice(it, size)):
        yield batch
        del batch


def robustness_streams(model_id: str, streams: Sequence[str], cfg: EvaluateConfig) -> list[str]:
    """The streams removed one at a time to test robustness: the fused model's, if it has >1."""
    names = list(streams)
    return names if model_id == FUSED_ID and cfg.robustness and len(names) > 1 else []


def score_batch(
    model: Any,
    raws: Sequence[Mapping[str, Any]],
    removed: Sequence[str],
    batch_size: int,
    noise_seed: int | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Probabilities of one model on raw samples, on them with each stream in `removed`
    dropped, and (given `noise_seed`) with each such stream's tensors replaced by noise. The one
    scoring step of both the in-memory and the streamed evaluation."""
    # Imported here: the model code pulls in torch, which this module's pure part does not need.
    # The served pyfunc decodes and scores through the same function (train.models.predict_logits).
    from modalops.train.models import predict_proba

    probs = predict_proba(model, raws, batch_size)
    dropped = {
        name: predict_proba(model, [drop_stream(s, name) for s in raws], batch_size)
        for name in removed
    }
    noised = {}
    if noise_seed is not None:
        for k, name in enumerate(removed):
            seed = noise_seed + k
            noised[name] = stress.predict_proba_noised(model, raws, name, seed, batch_size)
    return probs, dropped, noised


@dataclass
class _SplitScores:
    """What streaming one split keeps: per model the probability chunks (and stream-dropped
    chunks), the light truth records, and the first few raw samples (for latency)."""

    probs: list[list[np.ndarray]]
    removed: list[dict[str, list[np.ndarray]]]
    noised: list[dict[str, list[np.ndarray]]]
    truth: list[dict[str, Any]] = field(default_factory=list)
    head: list[Mapping[str, Any]] = field(default_factory=list)


def _score_split(
    models: Sequence[tuple[str, Sequence[str], Any]],
    samples: Iterable[Mapping[str, Any]],
    cfg: EvaluateConfig,
    robustness: bool,
    keep_head: int = 0,
) -> _SplitScores:
    """Stream one split once in batches of `cfg.batch_size`, scoring every model on each batch.

    At most one batch of raw samples is alive (plus the first `keep_head`, kept aside); a batch
    is exactly one `predict_proba` batch, so the probabilities equal scoring the split at once."""
    removed = [robustness_streams(i, s, cfg) if robustness else [] for i, s, _ in models]
    acc = _SplitScores(
        probs=[[] for _ in models],
        removed=[{name: [] for name in r} for r in removed],
        noised=[{name: [] for name in r} for r in removed],
    )
    # not enumerate(): its reused result tuple would keep the previous batch alive
    seed = cfg.noise_seed
    for batch in iter_batches(samples, cfg.batch_size):
        _score_into(acc, models, removed, batch, cfg.batch_size, keep_head, seed)
        seed += 1000  # one seed per batch (and per stream, in score_batch): noise never repeats
        del batch  # before the next batch is read: one batch of raw payloads at a time
    if not acc.truth:  # an empty split still yields correctly shaped (0, n_classes) arrays
        _score_into(acc, models, removed, [], cfg.batch_size, 0, cfg.noise_seed)
    return acc


def _score_into(
    acc: _SplitScores,
    models: Sequence[tuple[str, Sequence[str], Any]],
    removed: Sequence[Sequence[str]],
    batch: Sequence[Mapping[str, Any]],
    batch_size: int,
    keep_head: int,
    noise_seed: int,
) -> None:
    """Score every model on one batch and append the results (and the batch's truth) to `acc`."""
    for k, (_, _, model) in enumerate(models):
        probs, dropped, noised = score_batch(model, batch, removed[k], batch_size, noise_seed)
        acc.probs[k].append(probs)
        for name, p in dropped.items():
            acc.removed[k][name].append(p)
        for name, p in noised.items():
            acc.noised[k][name].append(p)
    # only the fields truth_from_samples reads: no stream payloads outlive the batch
    acc.truth.extend(
        {"key": s["key"], "label_index": s["label_index"], "meta": s.get("meta")} for s in batch
    )
    acc.head.extend(batch[: max(0, keep_head - len(acc.head))])


def stream_outputs(
    models: Sequence[tuple[str, Iterable[str], Any]],
    val: Iterable[Mapping[str, Any]],
    test: Iterable[Mapping[str, Any]],
    cfg: EvaluateConfig,
) -> tuple[list[ModelOutputs], SplitTruth, SplitTruth]:
    """Score loaded `(model_id, streams, model)` triples on val and test, reading each once.

    Memory is flat in the number of samples: at most `cfg.batch_size` raw samples (payloads) are
    held at a time, plus the first `cfg.latency_samples` test samples kept for timing; what grows
    with the split is only the probabilities (n_samples x n_classes per model and per removed
    stream) and the truth (label, session, metadata per sample). The fused model is also scored
    with each stream removed (see `robustness_streams`)."""
    triples = [(i, list(s), m) for i, s, m in models]
    v = _score_split(triples, val, cfg, robustness=False)
    t = _score_split(triples, test, cfg, robustness=True, keep_head=cfg.latency_samples)
    # Imported here, as in score_batch: torch is only needed once there are models to run.
    from modalops.train.models import predict_proba

    outputs = []
    for k, (model_id, names, model) in enumerate(triples):
        outputs.append(
            ModelOutputs(
                model_id=model_id,
                streams=names,
                val_probs=np.concatenate(v.probs[k]),
                test_probs=np.concatenate(t.probs[k]),
                n_params=count_parameters(model),
                latency_ms=time_per_sample(
                    lambda r, m=model: predict_proba(m, r, 1), t.head, cfg.latency_samples
                ),
                removed={name: np.concatenate(ps) for name, ps in t.removed[k].items()},
                noised={name: np.concatenate(ps) for name, ps in t.noised[k].items()},
            )
        )
    return outputs, truth_from_samples(v.truth), truth_from_samples(t.truth)


def predict_outputs(
    model_id: str,
    streams: Iterable[str],
    model: Any,
    val: Iterable[Mapping[str, Any]],
    test: Iterable[Mapping[str, Any]],
    cfg: EvaluateConfig,
) -> ModelOutputs:
    """Score one loaded model on val and test (and test with each stream removed if fused).

    A one-model `stream_outputs`: the splits may be lists or iterators, read once in batches."""
    return stream_outputs([(model_id, streams, model)], val, test, cfg)[0][0]


def write_report(store: ObjectStore, out_prefix: str, report: EvaluationReport) -> dict[str, str]:
    """Write report.json, report.html and the plots under `out_prefix`; returns name -> key."""
    # Imported here: matplotlib is only needed when a report is rendered.
    from modalops.evaluate.report import make_plots, render_html

    if not report.plots:
        report.plots = make_plots(report)
    keys = {}
    for name, png in report.plots.items():
        keys[f"plot_{name}"] = join_key(out_prefix, "plots", f"{name}.png")
        store.put_bytes(keys[f"plot_{name}"], png)
    keys["report_json"] = join_key(out_prefix, "report.json")
    keys["report_html"] = join_key(out_prefix, "report.html")
    keys["headline_md"] = join_key(out_prefix, "headline.md")
    report.artifacts = dict(keys)
    store.put_text(keys["report_json"], report.to_json())
    store.put_text(keys["report_html"], render_html(report))
    store.put_text(keys["headline_md"], report.headline_markdown())
    return keys


def evaluation_slices(spec: Any, cfg: EvaluateConfig) -> list[str]:
    """Slice columns: the config's override when given, else the spec's metadata.slices."""
    return list(cfg.slices) if cfg.slices is not None else list(spec.metadata.slices)


def load_model(store: ObjectStore, key: str, model_id: str) -> Any:
    """A trained classifier from its checkpoint in the store, in eval mode."""
    from modalops.train.models import load_classifier

    try:
        blob = store.get_bytes(key)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"model {model_id}: checkpoint {store.uri(key)} is missing"
        ) from None
    return load_classifier(blob)[0]


def evaluate_models(
    store: ObjectStore,
    manifest: Any,
    trained: Sequence[Any],
    cfg: EvaluateConfig,
    out_prefix: str,
    raw: stress.SkewInputs | None = None,
) -> EvaluationReport:
    """Score every trained model on val and test, build the report and write it to the store.

    With `raw` (the recordings and the ingest settings) the test sessions are also re-cut with
    skewed clocks for the skew curves (`stress.skew_table`); without, the report says so.

    `trained` holds train.TrainResult items (model_id, checkpoint_key); each model decodes with
    the spec it was trained on, which must be compatible with the dataset's. Every model is loaded
    first, then each split is read once (see `stream_outputs`): peak memory is the models, one
    batch of `cfg.batch_size` raw samples and `cfg.latency_samples` more, whatever the split size.
    """
    from modalops.shard import iter_raw_samples

    spec = manifest.dataset_spec()
    # Refused before any model is loaded, from the manifest's counts (re-checked after reading).
    for split, name in (("test", "test"), ("val", "validation")):
        info = manifest.splits.get(split)
        if info is not None and info.n_samples == 0:
            raise ValueError(f"dataset {manifest.version}: the {name} split is empty")
    models = []
    for tr in trained:
        model = load_model(store, tr.checkpoint_key, tr.model_id)
        model.spec.check_compatible(spec, what=f"model {tr.model_id}")
        models.append((tr.model_id, model.streams, model))
    outputs, val, test = stream_outputs(
        models,
        iter_raw_samples(store, manifest, "val"),
        iter_raw_samples(store, manifest, "test"),
        cfg,
    )
    if not len(test.labels):
        raise ValueError(f"dataset {manifest.version}: the test split is empty")
    if not len(val.labels):
        raise ValueError(f"dataset {manifest.version}: the validation split is empty")
    report = build_report(
        outputs,
        val,
        test,
        cfg,
        labels=spec.labels.classes,
        slices=evaluation_slices(spec, cfg),
        extra_headline={"dataset_version": manifest.version},
    )
    cal = stress.Calibration(report.calibration["temperature"], report.abstention["threshold"])
    test_keys = test_sample_keys(test)
    skew, skipped, seconds = stress.run_skew(raw, manifest, models, FUSED_ID, test_keys, cal, cfg)
    report.stress = stress.with_stress(report.stress, skew, skipped, seconds)
    write_report(store, out_prefix, report)
    return report


# ---- reuse: an evaluation of the same checkpoints with the same config is not run again ---------

EVALUATIONS_DIR = "evaluations"


def evaluation_cache_key(manifest: Any, trained: Sequence[Any], cfg: EvaluateConfig) -> str | None:
    """Content key of an evaluation: dataset version, each model's checkpoint digest and the
    evaluation config. None when a model has no digest (nothing safe to key on)."""
    models = []
    for tr in sorted(trained, key=lambda t: t.model_id):
        digest = getattr(tr, "checkpoint_sha256", None)
        if not digest:
            return None
        models.append([tr.model_id, list(tr.streams), digest])
    material = {
        "dataset_version": manifest.version,
        "models": models,
        "evaluate": cfg.model_dump(mode="json"),
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def evaluation_cache_prefix(manifest: Any, key: str) -> str:
    """datasets/<version>/evaluations/<key>/: report.json (before the gate) and plots/."""
    return join_key(manifest.prefix, EVALUATIONS_DIR, key)


def find_evaluation(store: ObjectStore, manifest: Any, key: str | None) -> EvaluationReport | None:
    """The stored report (with its plots) for `key`, or None. report.json is written last, so
    its presence commits the entry."""
    if key is None:
        return None
    prefix = evaluation_cache_prefix(manifest, key)
    report_key = join_key(prefix, "report.json")
    if not store.exists(report_key):
        return None
    report = EvaluationReport.from_json(store.get_bytes(report_key))
    plots_prefix = join_key(prefix, "plots") + "/"
    for plot_key in store.list(plots_prefix):
        name = plot_key[len(plots_prefix) :].removesuffix(".png")
        report.plots[name] = store.get_bytes(plot_key)
    report.gate = {}
    return report


def evaluate_or_reuse(
    store: ObjectStore,
    manifest: Any,
    trained: Sequence[Any],
    cfg: EvaluateConfig,
    out_prefix: str,
    raw: stress.SkewInputs | None = None,
) -> tuple[EvaluationReport, bool]:
    """`evaluate_models`, unless the same checkpoints were evaluated with the same config before:
    then the stored report is written under `out_prefix` (the run's own copy). Returns the
    report and whether it was reused."""
    key = evaluation_cache_key(manifest, trained, cfg)
    cached = find_evaluation(store, manifest, key)
    if cached is not None:
        write_report(store, out_prefix, cached)
        return cached, True
    report = evaluate_models(store, manifest, trained, cfg, out_prefix, raw)
    if key is not None:
        prefix = evaluation_cache_prefix(manifest, key)
        for name, png in report.plots.items():
            store.put_bytes(join_key(prefix, "plots", f"{name}.png"), png)
        store.put_text(join_key(prefix, "report.json"), report.to_json())
    return report, False
