"""Tiny classifiers and raw samples built from any dataset spec, for evaluation/serving/registry tests.

Every stream's payload shows its sample's class (testing.shards.payload, one builder per kind),
so a few optimiser steps on a width-4 model learn something real; no training run needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalops.dataset.columns import payload_column, presence_column, sample_key
from modalops.dataset.spec import DatasetSpec, spec_from_text
from modalops.testing import shards

# A dataset nothing like the demo: a wrist video and a 6-channel IMU, 3 classes, a `device` slice.
OTHER_SPEC_YAML = """
name: wrist-activity
reference: wrist_video
streams:
  wrist_video:
    kind: video
    path: wrist.mp4
    params: {width: 16, height: 16, channels: 3}
  imu:
    kind: timeseries
    path: imu.csv
    params: {time_column: time_ms, time_unit: ms, sample_rate: 25.0,
             channels: [acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z]}
labels:
  classes: [idle, walk, run]
  source: session
  column: activity
metadata:
  columns: [device, firmware]
  slices: [device]
"""


def other_spec() -> DatasetSpec:
    """The non-demo spec above (video + 6-channel timeseries, 3 classes, slices on `device`)."""
    return spec_from_text(OTHER_SPEC_YAML, "modalops/testing/models.py (OTHER_SPEC_YAML)")


def meta_value(column: str, session: int) -> str:
    """Session metadata: every column's value is `_b` for every third session, else `_a`;
    the subject is one per session (so session splits can always be filled)."""
    if column == "subject":
        return f"subject-{session:03d}"
    return f"{column}_{'a' if session % 3 else 'b'}"


def make_samples(
    spec: DatasetSpec, n: int, seed: int = 0, window_s: float = 1.0, sessions: int = 4
) -> list[dict[str, Any]]:
    """Raw samples (the shard reader's dict form) whose class shows in every stream."""
    rng = np.random.default_rng(seed)
    classes = list(spec.labels.classes)
    out = []
    for i in range(n):
        y = i % len(classes)
        session = f"s{seed}-{i % sessions}"
        meta = {c: meta_value(c, i % sessions) for c in spec.meta_columns}
        out.append(
            {
                "key": sample_key(session, i),
                "label": classes[y],
                "label_index": y,
                "meta": {**meta, "session_id": session, "window_index": i},
                "streams": {s: shards.payload(spec, s, window_s, y, rng) for s in spec.streams},
            }
        )
    return out


def samples_table(spec: DatasetSpec, samples: Sequence[dict[str, Any]], window_s: float = 1.0):
    """Raw samples as an aligned-sample table (`columns.sample_columns(spec)`), for write_shards."""
    rows = []
    for s in samples:
        meta = s["meta"]
        start = float(meta["window_index"]) * window_s
        row: dict[str, Any] = {
            "session_id": meta["session_id"],
            "window_index": int(meta["window_index"]),
            "t_start": start,
            "t_end": start + window_s,
            "label": s["label"],
            "label_overlap": 1.0,
            "boundary": False,
            "align_confidence": 1.0,
        }
        for name, payload in s["streams"].items():
            row[presence_column(name)] = payload is not None and payload != ""
            row[payload_column(name)] = payload
        for c in spec.meta_columns:
            row[c] = meta[c]
        rows.append(row)
    return pd.DataFrame(rows)


def tiny_classifier(
    spec: DatasetSpec,
    streams: Sequence[str] | None = None,
    seed: int = 0,
    window_s: float = 1.0,
    hidden_dim: int = 4,
):
    """A width-4 MultimodalClassifier over `streams` (default: all), random weights, eval mode."""
    import torch

    from modalops.train.models import MultimodalClassifier

    torch.manual_seed(seed)
    model = MultimodalClassifier(spec, list(streams or spec.streams), hidden_dim, window_s)
    return model.eval()


def fit_tiny(model, samples: Sequence[dict[str, Any]], steps: int, lr: float = 0.03):
    """A few full-batch Adam steps on decoded samples (seconds on a CPU); returns it in eval mode."""
    import torch

    from modalops.train.inputs import raw_to_tensors

    decoded = [raw_to_tensors(s["streams"], model.spec, model.window_s) for s in samples]
    inputs = {k: torch.stack([d[0][k] for d in decoded]) for k in decoded[0][0]}
    presence = torch.stack([d[1] for d in decoded])
    y = torch.tensor([s["label_index"] for s in samples])
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs, presence), y).backward()
        opt.step()
    return model.eval()


def save_tiny(model, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """The model as a checkpoint file (train.models.save_checkpoint)."""
    from modalops.train.models import save_checkpoint

    save_checkpoint(model, path, meta or {})
    return Path(path)


def tiny_report(temperature: float = 1.0, threshold: float = 0.0, flagged: Sequence[str] = ()):
    """An EvaluationReport with just what registration reads (calibration, abstention, slices)."""
    from modalops.evaluate import EvaluationReport

    slices = pd.DataFrame(
        [{"column": s.split("=")[0], "value": s.split("=")[1], "flagged": True} for s in flagged],
        columns=["column", "value", "flagged"],
    )
    return EvaluationReport(
        headline={"fused_macro_f1": 0.9},
        models=pd.DataFrame(),
        slices=slices,
        calibration={"temperature": temperature},
        abstention={"threshold": threshold},
    )


__all__ = [
    "OTHER_SPEC_YAML",
    "fit_tiny",
    "make_samples",
    "other_spec",
    "samples_table",
    "save_tiny",
    "tiny_classifier",
    "tiny_report",
]
