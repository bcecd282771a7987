"""The fused model under stress: each stream lost (dropped or replaced by noise), and each
non-reference stream's clock skewed by +-delta, scored against the single-stream baselines
(issue 25, part 1).

Noise works on decoded tensors, so it is the same for every kind: the stream's input stays
present but its tensor is Gaussian noise with the batch's own mean and standard deviation.
Skew re-cuts the held-out test sessions from the raw recordings with the align settings of the
dataset version, estimating each session's clocks once and shifting the estimate per delta.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modalops.config.evaluate import EvaluateConfig
from modalops.evaluate import metrics
from modalops.evaluate.result import SKEW_COLUMNS, STREAM_LOSS_COLUMNS, StressResult
from modalops.store import ObjectStore

LOSS_MODES = ("drop", "noise")
BEST_SINGLE = "best_single"


# ---- scoring one set of probabilities ------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """What turns the fused model's probabilities into answered/abstained (from the report)."""

    temperature: float = 1.0
    threshold: float = 0.0  # calibrated confidence below it abstains


def score_row(
    probs: np.ndarray, labels: np.ndarray, ece_bins: int, cal: Calibration | None
) -> dict[str, Any]:
    """macro-F1, ECE (uncalibrated) and coverage (at `cal`'s threshold; 1.0 without one)."""
    n_classes = probs.shape[1]
    n = int(len(labels))
    if not n:
        return {"macro_f1": float("nan"), "ece": float("nan"), "coverage": float("nan"), "n": 0}
    coverage = 1.0
    if cal is not None:
        calibrated = metrics.softmax(metrics.probs_to_logits(probs), cal.temperature)
        coverage = metrics.coverage(calibrated, cal.threshold)
    return {
        "macro_f1": metrics.macro_f1(labels, probs.argmax(axis=1), n_classes),
        "ece": metrics.ece(probs, labels, ece_bins),
        "coverage": float(coverage),
        "n": n,
    }


# ---- stream loss ---------------------------------------------------------------------------


def predict_proba_noised(
    model: Any, samples: Sequence[Mapping[str, Any]], stream: str, seed: int, batch_size: int
) -> np.ndarray:
    """The model's probabilities with `stream`'s decoded tensors replaced by Gaussian noise of
    their own mean and std over `samples` (present windows only; presence is unchanged)."""
    import torch

    if not samples:
        return np.zeros((0, model.n_classes), dtype=np.float64)
    decoded = Decoded.of(model, samples)
    present = decoded.presence[:, list(model.spec.stream_names).index(stream)] > 0
    x = decoded.inputs[stream]
    ref = (x[present] if bool(present.any()) else x).float()
    mean, std = ref.mean(), ref.std() if ref.numel() > 1 else torch.tensor(0.0)
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(x.shape, generator=gen) * std + mean
    mask = present.view(-1, *([1] * (x.dim() - 1)))
    decoded.inputs[stream] = torch.where(mask, noise.to(x.dtype), x)
    return _forward(model, decoded.inputs, decoded.presence, batch_size)


def stream_loss_table(
    fused_removed: Mapping[str, np.ndarray],
    fused_noised: Mapping[str, np.ndarray],
    baselines: Mapping[str, tuple[Sequence[str], np.ndarray]],
    labels: np.ndarray,
    cal: Calibration,
    ece_bins: int,
) -> pd.DataFrame:
    """Per lost stream and mode: the fused model, and the best baseline not using that stream."""
    rows = []
    for mode, lost in (("drop", fused_removed), ("noise", fused_noised)):
        for stream, probs in lost.items():
            rows.append(
                {"stream": stream, "mode": mode, "model": "fused"}
                | score_row(probs, labels, ece_bins, cal)
            )
            others = [
                score_row(p, labels, ece_bins, None)
                for streams, p in baselines.values()
                if stream not in streams
            ]
            if others:
                best = max(others, key=lambda r: r["macro_f1"])
                rows.append({"stream": stream, "mode": mode, "model": BEST_SINGLE} | best)
    return pd.DataFrame(rows, columns=STREAM_LOSS_COLUMNS)


def loss_skips(fused_streams: Sequence[str], cfg: EvaluateConfig) -> list[dict[str, str]]:
    """Why no stream-loss rows exist, if none can: a one-stream model has nothing to lose."""
    if not cfg.robustness:
        return [{"stream": "*", "test": "stream_loss", "reason": "evaluate.robustness is off"}]
    if len(fused_streams) < 2:
        only = fused_streams[0] if fused_streams else "*"
        why = "the only stream: removing it leaves the model no input"
        return [{"stream": only, "test": "stream_loss", "reason": why}]
    return []


# ---- skew ----------------------------------------------------------------------------------


def signed_shifts(magnitudes: Sequence[float]) -> list[float]:
    """-d..0..+d for every magnitude, 0 once, ascending."""
    return sorted({float(s * d) for d in magnitudes if d > 0 for s in (-1.0, 1.0)} | {0.0})


@dataclass
class SkewInputs:
    """What the skew pass needs beyond the models: the raw recordings and how they were cut."""

    raw: ObjectStore
    ingest: Any  # config.ingest.IngestConfig of the run (which files, which sessions)


def skew_table(
    inputs: SkewInputs,
    manifest: Any,
    models: Sequence[tuple[str, Sequence[str], Any]],
    fused_id: str,
    test_keys: Sequence[str],
    cal: Calibration,
    cfg: EvaluateConfig,
) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Re-cut the test sessions with each non-reference stream shifted by +-delta; score the
    fused model and the stream's baseline on the windows of the test split that survive."""
    from modalops.align import align_dataset
    from modalops.config.align import AlignConfig
    from modalops.ingest import ingest_recordings
    from modalops.store import open_store

    spec = manifest.dataset_spec()
    by_id = {i: (list(s), m) for i, s, m in models}
    fused_streams, fused = by_id[fused_id]
    skipped = [
        {"stream": s, "test": "skew", "reason": "the reference stream defines the timeline"}
        for s in fused_streams
        if s == spec.reference
    ]
    shiftable = [s for s in fused_streams if s != spec.reference]
    align = (manifest.created_from.get("extra") or {}).get("align")
    if not align:
        why = f"dataset {manifest.version} records no align settings to re-cut with"
        return _empty_skew(), skipped + [
            {"stream": s, "test": "skew", "reason": why} for s in shiftable
        ]
    align_cfg = AlignConfig(**align)
    sessions = list(manifest.splits["test"].sessions)
    ingested = ingest_recordings(inputs.raw, spec, inputs.ingest, sessions=sessions)
    wanted = set(test_keys)
    cache: dict[str, Any] = {}
    rows = []
    with tempfile.TemporaryDirectory(prefix="modalops-skew-") as tmp:
        out = open_store(tmp)

        def recut(shift: Mapping[str, float], tag: str) -> tuple[list[str], list[dict], np.ndarray]:
            result = align_dataset(
                inputs.raw, spec, ingested.catalog, align_cfg, out=out, prefix=tag,
                quarantine=ingested.quarantine, clock_shift=shift, clock_cache=cache, plots=False,
            )  # fmt: skip
            return _test_samples(out, result.part_keys, spec, wanted)

        base_keys, base_samples, base_labels = recut({}, "zero")
        at = {k: i for i, k in enumerate(base_keys)}
        # every model decodes the unshifted windows once; a shifted re-cut decodes only the
        # shifted stream and swaps it in (the other streams' windows are the same bytes)
        decoded = {i: Decoded.of(m, base_samples) for i, (_, m) in by_id.items()}
        for stream in shiftable:
            baselines = [i for i, (s, _) in by_id.items() if s == [stream]]
            for delta in signed_shifts(cfg.skew_s):
                if delta == 0:
                    idx, labels, swapped = np.arange(len(base_keys)), base_labels, None
                else:
                    keys, samples, labels = recut({stream: delta}, f"{stream}/{delta}")
                    idx, swapped = np.array([at[k] for k in keys], dtype=np.int64), samples
                for model_id in [fused_id, *baselines]:
                    model = by_id[model_id][1]
                    probs = decoded[model_id].predict(model, idx, stream, swapped, cfg.batch_size)
                    c = cal if model_id == fused_id else None
                    rows.append(
                        {"stream": stream, "delta_s": delta, "model": model_id}
                        | score_row(probs, labels, cfg.ece_bins, c)
                    )
    return pd.DataFrame(rows, columns=SKEW_COLUMNS), skipped


@dataclass
class Decoded:
    """One model's decoded inputs of a set of windows: tensors per stream and presence."""

    inputs: dict[str, Any]
    presence: Any

    @classmethod
    def of(
        cls, model: Any, samples: Sequence[Mapping[str, Any]], wanted: Sequence[str] | None = None
    ) -> Decoded:
        import torch

        from modalops.train.inputs import input_shapes, raw_to_tensors

        names = list(wanted or model.streams)
        if not samples:
            shapes = input_shapes(model.spec, model.window_s)
            return cls(
                {s: torch.zeros((0, *shapes[s])) for s in names},
                torch.zeros((0, len(model.spec.stream_names))),
            )
        rows = [raw_to_tensors(s["streams"], model.spec, model.window_s, names) for s in samples]
        return cls(
            {s: torch.stack([r[0][s] for r in rows]) for s in names},
            torch.stack([r[1] for r in rows]),
        )

    def predict(
        self,
        model: Any,
        idx: np.ndarray,
        stream: str,
        swapped: Sequence[Mapping[str, Any]] | None,
        batch_size: int,
    ) -> np.ndarray:
        """Probabilities on the windows `idx`, with `stream` decoded from `swapped` if given."""

        inputs = {s: t[idx] for s, t in self.inputs.items()}
        presence = self.presence[idx]
        if swapped is not None and stream in inputs:
            new = Decoded.of(model, swapped, [stream])
            column = list(model.spec.stream_names).index(stream)
            inputs[stream] = new.inputs[stream]
            presence = presence.clone()
            presence[:, column] = new.presence[:, column]
        return _forward(model, inputs, presence, batch_size)


def _forward(model: Any, inputs: Mapping[str, Any], presence: Any, batch_size: int) -> np.ndarray:
    """Softmax of the model on decoded inputs, in batches (as train.models.predict_proba)."""
    import torch

    model.eval()
    out = [np.zeros((0, model.n_classes))]
    with torch.no_grad():
        for lo in range(0, len(presence), batch_size):
            part = {s: t[lo : lo + batch_size] for s, t in inputs.items()}
            logits = model(part, presence[lo : lo + batch_size]).numpy()
            out.append(torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy())
    return np.concatenate(out)


def _empty_skew() -> pd.DataFrame:
    return pd.DataFrame(columns=SKEW_COLUMNS)


def _test_samples(
    store: ObjectStore, part_keys: Sequence[str], spec: Any, wanted: set[str]
) -> tuple[list[str], list[dict[str, Any]], np.ndarray]:
    """Keys, raw sample dicts (as the shards yield them) and labels of the re-cut windows in
    the test split."""
    import io

    from modalops.dataset import columns

    keys, samples, labels = [], [], []
    classes = list(spec.labels.classes)
    for key in part_keys:
        part = pd.read_parquet(io.BytesIO(store.get_bytes(key)))
        for row in part.to_dict("records"):
            key = columns.sample_key(str(row["session_id"]), int(row["window_index"]))
            if key not in wanted:
                continue
            keys.append(key)
            streams = {
                s: row[columns.payload_column(s)] if row[columns.presence_column(s)] else None
                for s in spec.stream_names
            }
            samples.append({"streams": streams})
            labels.append(classes.index(str(row["label"])))
    return keys, samples, np.asarray(labels, dtype=np.int64)


def run_skew(
    inputs: SkewInputs | None,
    manifest: Any,
    models: Sequence[tuple[str, Sequence[str], Any]],
    fused_id: str,
    test_keys: Sequence[str],
    cal: Calibration,
    cfg: EvaluateConfig,
) -> tuple[pd.DataFrame, list[dict[str, str]], float]:
    """`skew_table`, or the reason it was not run; returns (table, skipped, seconds)."""
    if not cfg.skew:
        return (
            _empty_skew(),
            [{"stream": "*", "test": "skew", "reason": "evaluate.skew is off"}],
            0.0,
        )
    if inputs is None:
        why = "no raw recordings were given to the evaluation"
        return _empty_skew(), [{"stream": "*", "test": "skew", "reason": why}], 0.0
    t0 = time.perf_counter()
    table, skipped = skew_table(inputs, manifest, models, fused_id, test_keys, cal, cfg)
    return table, skipped, time.perf_counter() - t0


def with_stress(
    result: StressResult, skew: pd.DataFrame, skipped: list[dict[str, str]], seconds: float
) -> StressResult:
    """`result` (stream loss) with the skew curves added."""
    return StressResult(
        skew=skew,
        stream_loss=result.stream_loss,
        skipped=[*result.skipped, *skipped],
        seconds=seconds,
    )


# ---- figures for MLflow --------------------------------------------------------------------

SKEW_VALUES = ("macro_f1", "ece", "coverage")


def _model_label(model: str) -> str:
    """`fused`, or `baseline` for the stream's single-stream model (whatever its id)."""
    return "fused" if model == "fused" else "baseline"


def skew_f1_drop(skew: pd.DataFrame, stream: str, magnitude: float) -> float:
    """Fused macro-F1 at no shift minus its worse value at +-magnitude (nan if not measured)."""
    rows = skew[(skew["stream"] == stream) & (skew["model"] == "fused")]
    at = rows.set_index("delta_s")["macro_f1"].astype(float)
    if 0.0 not in at.index or magnitude not in at.index or -magnitude not in at.index:
        return float("nan")
    return float(at[0.0] - min(at[magnitude], at[-magnitude]))


def stress_metrics(result: StressResult) -> list[tuple[str, float, int]]:
    """MLflow points `(key, value, step)` (names in docs/evaluation.md):

    - `skew/<stream>/<fused|baseline>_<macro_f1|ece|coverage>` at step = shift in ms (a curve);
    - `skew/<stream>/f1_drop_at_<d>s` for every configured magnitude d (step 0);
    - `stream_loss/<stream>/<drop|noise>/<fused|best_single>_macro_f1` and `.../f1_drop`."""
    points: list[tuple[str, float, int]] = []
    skew = result.skew
    for r in skew.to_dict("records"):
        step = int(round(float(r["delta_s"]) * 1000))
        for value in SKEW_VALUES:
            key = f"skew/{r['stream']}/{_model_label(r['model'])}_{value}"
            points.append((key, r[value], step))
    for stream in sorted(set(skew["stream"])):
        for d in sorted({abs(float(x)) for x in skew["delta_s"]} - {0.0}):
            points.append((f"skew/{stream}/f1_drop_at_{d:g}s", skew_f1_drop(skew, stream, d), 0))
    loss = result.stream_loss
    for r in loss.to_dict("records"):
        points.append(
            (f"stream_loss/{r['stream']}/{r['mode']}/{r['model']}_macro_f1", r["macro_f1"], 0)
        )
    return points + [
        (f"stream_loss/{stream}/{mode}/f1_drop", value, 0)
        for (stream, mode), value in stream_reliance(result, None).items()
    ]


def stream_reliance(result: StressResult, fused_f1: float | None) -> dict[tuple[str, str], float]:
    """(stream, mode) -> how much fused macro-F1 is lost with the stream lost; against the
    unshifted skew row, else `fused_f1` (the report's headline)."""
    base = fused_f1
    zero = result.skew[(result.skew["delta_s"] == 0) & (result.skew["model"] == "fused")]
    if base is None and not zero.empty:
        base = float(zero["macro_f1"].iloc[0])
    out = {}
    loss = result.stream_loss
    for r in loss[loss["model"] == "fused"].to_dict("records"):
        if base is not None:
            out[(r["stream"], r["mode"])] = float(base) - float(r["macro_f1"])
    return out


def stress_plots(result: StressResult, fused_f1: float) -> dict[str, bytes]:
    """PNGs: `skew_<value>` (each stream's fused and baseline curve) and `stream_reliance`."""
    import io

    # Figure + Agg canvas directly (as evaluate.report does): no pyplot global state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def subplots() -> tuple[Any, Any]:
        fig = Figure(figsize=(6, 3.5), dpi=90)
        FigureCanvasAgg(fig)
        return fig, fig.add_subplot()

    def png(fig: Any) -> bytes:
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    plots: dict[str, bytes] = {}
    skew = result.skew
    if not skew.empty:
        for value in SKEW_VALUES:
            fig, axes = subplots()
            for (stream, model), rows in skew.groupby(["stream", "model"], sort=True):
                rows = rows.sort_values("delta_s")
                style = "-o" if model == "fused" else "--x"
                label = f"{stream}: {_model_label(str(model))}"
                axes.plot(rows["delta_s"], rows[value].astype(float), style, label=label, ms=4)
            axes.set_xlabel("clock shift of the stream (s)")
            axes.set_ylabel(value)
            axes.set_title(f"{value} against skew")
            axes.axvline(0, color="grey", lw=0.5)
            axes.legend(fontsize=7)
            plots[f"skew_{value}"] = png(fig)
    loss = result.stream_loss
    if not loss.empty:
        fused = loss[loss["model"] == "fused"]
        streams = sorted(set(fused["stream"]))
        fig, axes = subplots()
        width = 0.38
        for k, mode in enumerate(LOSS_MODES):
            at = fused[fused["mode"] == mode].set_index("stream")["macro_f1"]
            xs = [i + (k - 0.5) * width for i in range(len(streams))]
            axes.bar(xs, [float(at.get(s, np.nan)) for s in streams], width, label=f"fused, {mode}")
        best = loss[(loss["model"] == BEST_SINGLE) & (loss["mode"] == "drop")].set_index("stream")
        for i, s in enumerate(streams):
            if s in best.index:
                y = float(best.loc[s, "macro_f1"])
                axes.hlines(y, i - 0.45, i + 0.45, colors="black", linestyles="dashed")
        axes.axhline(fused_f1, color="grey", lw=0.8, label="fused, all streams")
        axes.set_xticks(range(len(streams)), [f"without {s}" for s in streams], fontsize=8)
        axes.set_ylabel("macro-F1 (dashed: best single stream left)")
        axes.set_title("stream reliance")
        axes.legend(fontsize=7)
        plots["stream_reliance"] = png(fig)
    return plots
