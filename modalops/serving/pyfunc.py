"""The fused model as an MLflow pyfunc: one column per spec stream in; label, calibrated
probability, abstention (and why), the input's issues and missing streams out.

The pyfunc ships with the `modalops` package as code (`code_paths`) and carries the dataset spec
it was trained on (the `dataset_spec` artifact, and inside the checkpoint). Inputs are converted
with each stream kind's `codec.to_payload` and scored by `train.models.predict_logits` (the
evaluation's decode path, through the DataModule's `train.inputs.raw_to_tensors`), so there is no
train/serve skew. Every row is first checked with its streams' kinds' validation rules
(`serving.input_checks`); a row that breaks one abstains. At load time it imports only mlflow,
torch, numpy, pandas, PIL, pydantic and yaml (mlflow brings the last two).
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from modalops.kinds.payloads import is_absent
from modalops.serving.input_checks import InputScreen, screen_inputs, serving_rules

DEFAULT_LOADER = "modalops.train.models:load_classifier"
SERVING_CONFIG_ARTIFACT = "serving_config"
CHECKPOINT_ARTIFACT = "checkpoint"
SPEC_ARTIFACT = "dataset_spec"  # dataset.yaml of the spec the model was trained on
SPEC_PARAM = "dataset_spec"  # predict(params={SPEC_PARAM: yaml}): decode only if it matches


def serving_config(
    temperature: float,
    threshold: float,
    labels: Sequence[str],
    spec_digest: str,
    streams: Sequence[str],
    window_s: float,
    loader: str = DEFAULT_LOADER,
    batch_size: int = 64,
) -> dict[str, Any]:
    """The JSON document logged as the `serving_config` artifact next to the checkpoint."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(
            f"serving config: temperature must be a positive number, got {temperature}"
        )
    return {
        "temperature": float(temperature),
        "abstention_threshold": float(threshold),
        "labels": list(labels),
        "spec_digest": str(spec_digest),
        "streams": list(streams),
        "window_s": float(window_s),
        "loader": loader,
        "batch_size": int(batch_size),
    }


def _load_callable(ref: str):
    module, _, name = ref.partition(":")
    if not module or not name:
        raise ValueError(f"serving config: loader {ref!r} must look like 'package.module:function'")
    return getattr(importlib.import_module(module), name)


def load_served_model(checkpoint: str | Path, loader: str = DEFAULT_LOADER) -> Any:
    """The classifier in a checkpoint, through the serving config's loader, in eval mode."""
    loaded = _load_callable(loader)(str(checkpoint))
    model = loaded[0] if isinstance(loaded, tuple) else loaded
    model.eval()
    return model


def rows_to_raw(model_input: pd.DataFrame | Mapping[str, Any], spec: Any) -> list[dict[str, Any]]:
    """Input table -> one {stream: payload} per row, each cell converted by its kind's codec.

    Columns are the spec's stream names; a missing column or an empty cell is an absent stream.
    An unknown column is refused, naming it (a typo would otherwise silently drop a stream).
    """
    names = list(spec.streams)
    if isinstance(model_input, Mapping):
        model_input = pd.DataFrame(dict(model_input))
    if not isinstance(model_input, pd.DataFrame):
        raise ValueError(
            f"model input: expected a DataFrame with columns {names}, "
            f"got {type(model_input).__name__}"
        )
    unknown = [str(c) for c in model_input.columns if c not in spec.streams]
    if unknown:
        raise ValueError(
            f"model input: unknown columns {unknown}; the model's dataset spec "
            f"{spec.name!r} has streams {names}"
        )
    codecs = {n: spec.kind_of(n).codec for n in names}
    raws = []
    for i, rec in enumerate(model_input.to_dict("records")):
        row: dict[str, Any] = {}
        for name in names:
            value = rec.get(name)
            try:
                # each codec maps its own "absent" (None, NaN, empty) to the stored absent value
                row[name] = codecs[name].to_payload(value)
            except ValueError as exc:
                raise ValueError(f"model input row {i}, column {name}: {exc}") from None
        raws.append(row)
    return raws


def abstain_reason(probability: float, issues: Sequence[str], threshold: float) -> str:
    """Why a row abstains, "" when it does not: its input's issues, a low probability, or both."""
    why = ["input issues"] if issues else []
    if probability < threshold:
        why.append(f"probability {probability:.2f} < threshold {threshold:.2f}")
    return "; ".join(why)


def outputs_frame(
    logits: np.ndarray,
    labels: Sequence[str],
    temperature: float,
    threshold: float,
    screen: InputScreen | None = None,
) -> pd.DataFrame:
    """Calibrated probabilities -> label, probability, abstained, abstain_reason, input_issues,
    missing_streams and one prob_<class> column per class.

    A row abstains when its probability is under `threshold` or when `screen` found an issue in
    its input (the model's answer on data its own checks reject is no answer); `abstain_reason`
    says which, `input_issues` lists the issues ("; "-joined, "" when none), `missing_streams`
    the model's streams the row lacks (", "-joined).
    """
    labels = list(labels)
    z = np.asarray(logits, dtype=np.float64).reshape(-1, len(labels)) / temperature
    z -= z.max(axis=1, keepdims=True) if len(z) else 0.0
    probs = np.exp(z)
    probs /= probs.sum(axis=1, keepdims=True) if len(z) else 1.0
    top = probs.argmax(axis=1)
    conf = probs[np.arange(len(top)), top]
    issues = screen.issues if screen is not None else [[] for _ in top]
    missing = screen.missing if screen is not None else [[] for _ in top]
    reasons = [abstain_reason(p, found, threshold) for p, found in zip(conf, issues, strict=True)]
    out = pd.DataFrame(
        {
            "label": [labels[i] for i in top],
            "probability": conf,
            "abstained": np.array([bool(r) for r in reasons], dtype=bool),
            "abstain_reason": pd.Series(reasons, dtype=object),
            "input_issues": pd.Series(["; ".join(f) for f in issues], dtype=object),
            "missing_streams": pd.Series([", ".join(m) for m in missing], dtype=object),
        }
    )
    for j, name in enumerate(labels):
        out[f"prob_{name}"] = probs[:, j]
    return out


def spec_of(model: Any) -> Any:
    """The DatasetSpec a classifier, a MultimodalPyfunc or a loaded mlflow pyfunc decodes with."""
    for candidate in (model, getattr(model, "model", None)):
        spec = getattr(candidate, "spec", None)
        if spec is not None:
            return spec
    unwrap = getattr(model, "unwrap_python_model", None)
    if unwrap is not None:
        return spec_of(unwrap())
    raise ValueError(f"{type(model).__name__}: carries no dataset spec")


def check_spec(model: Any, other: Any) -> None:
    """Raise SpecError (naming both specs and every difference) unless `other` fits the model."""
    from modalops.dataset.spec import DatasetSpec, spec_from_text

    if not isinstance(other, DatasetSpec):
        other = spec_from_text(str(other), "the caller's dataset spec")
    spec_of(model).check_compatible(other, what="served model")


class MultimodalPyfunc(mlflow.pyfunc.PythonModel):
    """Loads checkpoint, serving config and spec; predicts calibrated labels with abstention."""

    def load_context(self, context) -> None:
        cfg_path = Path(context.artifacts[SERVING_CONFIG_ARTIFACT])
        try:
            self.config = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{cfg_path}: unreadable serving config ({exc})") from None
        self.model = load_served_model(
            context.artifacts[CHECKPOINT_ARTIFACT], self.config.get("loader", DEFAULT_LOADER)
        )
        self.spec = self._spec(context)
        self.labels = list(self.config["labels"])
        if self.labels != list(self.spec.labels.classes):
            raise ValueError(
                f"{cfg_path}: labels {self.labels} differ from the model's dataset spec "
                f"classes {self.spec.labels.classes}"
            )

    def _spec(self, context) -> Any:
        from modalops.dataset.spec import spec_from_text

        path = context.artifacts.get(SPEC_ARTIFACT)
        spec = getattr(self.model, "spec", None)
        if path is not None:
            logged = spec_from_text(Path(path).read_text(), str(path))
            if spec is not None and logged.digest() != spec.digest():
                raise ValueError(
                    f"{path}: the logged dataset spec (digest {logged.digest()[:12]}) is not the "
                    f"one inside the checkpoint ({spec.digest()[:12]})"
                )
            spec = spec or logged
        if spec is None:
            raise ValueError("served model: neither the checkpoint nor the artifacts carry a spec")
        want = self.config.get("spec_digest")
        if want and spec.digest() != want:
            raise ValueError(
                f"served model: dataset spec digest {spec.digest()[:12]} differs from the serving "
                f"config's {want[:12]}"
            )
        return spec

    def input_rules(self) -> dict:
        """{stream: serving rules} of the model's streams, built once (spec + trained encoders)."""
        if getattr(self, "_input_rules", None) is None:
            streams = self.config.get("streams") or list(self.spec.streams)
            encoders = getattr(self.model, "encoders", None) or {}
            found = {s: encoders[s] for s in streams if s in encoders}
            self._input_rules = serving_rules(self.spec, streams, found)
        return self._input_rules

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Label, calibrated probability and abstention per row, with what its input lacks and
        breaks (see `outputs_frame`); the caller's dataset spec (params `dataset_spec`), when
        given, must fit the model's.

        Columns are the spec's streams. An unknown column is refused, naming it (a misspelt
        stream would otherwise be read as a missing one), wherever this method sees it: called
        through `mlflow.pyfunc.load_model` or REST, MLflow's schema enforcement drops a column
        the signature lacks before this runs (with a warning naming it), and the stream it was
        meant to fill is then named in `missing_streams`."""
        caller_spec = (params or {}).get(SPEC_PARAM)
        if caller_spec:
            check_spec(self, caller_spec)
        from modalops.train.models import predict_logits

        raws = rows_to_raw(model_input, self.spec)
        labels, threshold = self.labels, float(self.config["abstention_threshold"])
        if not raws:
            return outputs_frame(np.zeros((0, len(labels))), labels, 1.0, threshold)
        window_s = float(self.config.get("window_s") or self.model.window_s)
        screen = screen_inputs(raws, self.spec, self.input_rules(), window_s)
        logits = predict_logits(
            self.model, [{"streams": r} for r in raws], int(self.config.get("batch_size", 64))
        )
        return outputs_frame(logits, labels, float(self.config["temperature"]), threshold, screen)


def to_input_frame(samples: Sequence[Mapping[str, Any]], spec: Any) -> pd.DataFrame:
    """Raw samples (as from shard.iter_raw_samples) -> the pyfunc's input table.

    Binary streams travel as bytes, text as str ("" when none), time series as a list of rows
    (JSON-friendly for REST, and what the signature's array type holds); absent streams are None.
    """
    import io

    names = list(spec.streams)
    rows = []
    for s in samples:
        payloads = s.get("streams") if isinstance(s.get("streams"), Mapping) else s
        row: dict[str, Any] = {}
        for name in names:
            kind = spec.streams[name].kind
            value = payloads.get(name)
            if kind == "text":
                row[name] = "" if is_absent(value) else str(value)
            elif is_absent(value):
                row[name] = None
            elif kind == "timeseries":
                arr = value
                if isinstance(value, (bytes, bytearray, memoryview)):
                    arr = np.load(io.BytesIO(bytes(value)), allow_pickle=False)
                row[name] = np.asarray(arr, dtype=np.float64).tolist() or None
            else:
                row[name] = bytes(value)
        rows.append(row)
    return pd.DataFrame(rows, columns=names)


def pip_requirements() -> list[str]:
    """Pinned requirements of a consumer: mlflow, torch and what they bring anyway."""
    import PIL
    import pydantic
    import torch
    import yaml

    return [
        f"mlflow=={mlflow.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
        f"pillow=={PIL.__version__}",
        f"pydantic=={pydantic.VERSION}",
        f"pyyaml=={yaml.__version__}",
    ]


def package_dir() -> str:
    """The `modalops` package directory, shipped with the model as code."""
    import modalops

    return str(Path(modalops.__file__).parent)
