"""The multimodal classifier (one encoder per spec stream, from its kind + masked fusion) and its
Lightning wrapper.

No I/O beyond `save_checkpoint`/`load_classifier`, which write plain `torch.save` files that
`torch.load(weights_only=True)` reads (tensors, plain values, and the dataset spec as JSON text):
the served model needs neither Lightning nor pickled classes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from modalops.dataset.spec import DatasetSpec, parse_spec
from modalops.train.inputs import input_shapes, raw_to_tensors

try:  # Lightning is a training dependency only; serving imports this module without it
    from lightning.pytorch import LightningModule
except ImportError:  # pragma: no cover - exercised only in a torch-only consumer environment
    LightningModule = nn.Module  # type: ignore[assignment,misc]

# /2: the dataset spec and window_s travel inside; /3: the encoders of ENCODER_VERSION 3 (input
# normalisation from training statistics, the temporal audio encoder: issue 22). /2 checkpoints
# still load, with the version-2 encoders, so a champion registered before can be re-scored.
CHECKPOINT_FORMAT = "modalops.classifier/3"
READABLE_FORMATS = {"modalops.classifier/2": 2, CHECKPOINT_FORMAT: 3}  # format -> encoder version
ENCODER_VERSION = 3


class MultimodalClassifier(nn.Module):
    """One encoder per stream (from its kind, sized from the spec), masked concatenation, MLP head.

    One stream = a single-stream baseline. Absent streams (presence 0) contribute a zero
    embedding, and the presence bits themselves are fed to the head so it can tell "absent" from
    "present but quiet". `forward` takes presence over *all* spec streams in spec order (what
    `raw_to_tensors` returns) and uses the columns of its own streams.
    """

    def __init__(
        self,
        spec: DatasetSpec | Mapping[str, Any],
        streams: Sequence[str],
        hidden_dim: int = 32,
        window_s: float = 1.0,
        encoder_version: int = ENCODER_VERSION,
    ):
        super().__init__()
        spec = spec if isinstance(spec, DatasetSpec) else parse_spec(dict(spec), "checkpoint spec")
        names = spec.stream_names
        unknown = [s for s in streams if s not in names]
        if unknown or not streams:
            raise ValueError(
                f"streams {list(streams)}: expected a non-empty subset of the spec's streams {names}"
            )
        self.spec = spec
        self.streams = [s for s in names if s in streams]  # spec order
        self.labels = list(spec.labels.classes)
        self.hidden_dim = hidden_dim
        self.window_s = float(window_s)
        self.encoder_version = int(encoder_version)
        self.n_classes = len(self.labels)
        self._columns = [names.index(s) for s in self.streams]
        shapes = input_shapes(spec, self.window_s)
        self.input_shapes = {s: shapes[s] for s in self.streams}
        self.encoders = nn.ModuleDict(
            {
                s: spec.kind_of(s).encoder.build_encoder(
                    spec.params(s), shapes[s], hidden_dim, self.encoder_version
                )
                for s in self.streams
            }
        )
        n = len(self.streams)
        self.head = nn.Sequential(
            # GELU, not ReLU: a narrow head (tests use width 4) can start with every unit dead
            nn.Linear(n * hidden_dim + n, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, self.n_classes),
        )

    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain values (the spec as JSON text, for weights_only loads)."""
        return {
            # unsorted: the spec's stream order is the presence-column order
            "spec_json": json.dumps(self.spec.to_dict()),
            "streams": list(self.streams),
            "hidden_dim": self.hidden_dim,
            "window_s": self.window_s,
            "encoder_version": self.encoder_version,
        }

    def forward(self, inputs: Mapping[str, torch.Tensor], presence: torch.Tensor) -> torch.Tensor:
        mask = presence[:, self._columns]
        parts = [
            self.encoders[s](inputs[s]) * mask[:, i : i + 1] for i, s in enumerate(self.streams)
        ]
        return self.head(torch.cat([*parts, mask], dim=1))


def drop_streams(
    presence: torch.Tensor, p: float, columns: Sequence[int], generator=None
) -> torch.Tensor:
    """Modality dropout: hide each of `columns` with chance `p`, never hiding all present ones.

    Trains the fused model to cope with a missing stream, e.g. a dead sensor (issue 5, item 1).
    """
    if p <= 0 or len(columns) < 2:
        return presence
    cols = torch.as_tensor(list(columns), device=presence.device)
    sub = presence[:, cols]
    keep = (torch.rand(sub.shape, generator=generator, device=presence.device) >= p).to(sub.dtype)
    dropped = sub * keep
    # a sample that would lose every stream keeps its original mask
    nothing_left = dropped.sum(dim=1, keepdim=True) == 0
    dropped = torch.where(nothing_left, sub, dropped)
    out = presence.clone()
    out[:, cols] = dropped
    return out


def macro_f1(preds: torch.Tensor, target: torch.Tensor, n_classes: int) -> float:
    """Macro-F1 over the classes present in target or predictions (sklearn's convention)."""
    scores = []
    for c in range(n_classes):
        tp = ((preds == c) & (target == c)).sum().item()
        fp = ((preds == c) & (target != c)).sum().item()
        fn = ((preds != c) & (target == c)).sum().item()
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(sum(scores) / len(scores)) if scores else 0.0


class ClassifierModule(LightningModule):
    """Lightning wrapper: AdamW, cross-entropy (optionally class-weighted), modality dropout."""

    def __init__(
        self,
        spec: Mapping[str, Any],
        streams: Sequence[str],
        hidden_dim: int = 32,
        window_s: float = 1.0,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-4,
        modality_dropout: float = 0.0,
        class_weights: Sequence[float] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()  # `spec` is the spec's plain dict, so hparams stay plain
        self.model = MultimodalClassifier(spec, streams, hidden_dim, window_s)
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        self._val_preds: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def forward(self, inputs, presence):
        return self.model(inputs, presence)

    def training_step(self, batch, batch_idx):
        inputs, presence, target = batch
        if self.hparams.modality_dropout > 0:
            presence = drop_streams(presence, self.hparams.modality_dropout, self.model._columns)
        logits = self.model(inputs, presence)
        loss = F.cross_entropy(logits, target, weight=self.class_weights)
        self.log(
            "train_loss", loss, on_step=False, on_epoch=True, batch_size=len(target), sync_dist=True
        )
        return loss

    def validation_step(self, batch, batch_idx):
        inputs, presence, target = batch
        logits = self.model(inputs, presence)
        loss = F.cross_entropy(logits, target)
        self.log(
            "val_loss", loss, on_step=False, on_epoch=True, batch_size=len(target), sync_dist=True
        )
        self._val_preds.append(logits.argmax(dim=1))
        self._val_targets.append(target)

    def on_validation_epoch_end(self):
        if not self._val_preds:
            return
        preds, target = torch.cat(self._val_preds), torch.cat(self._val_targets)
        self._val_preds, self._val_targets = [], []
        if self.trainer.world_size > 1:
            # every rank yields the same number of val samples (the DataModule guarantees it)
            preds = self.all_gather(preds).reshape(-1)
            target = self.all_gather(target).reshape(-1)
        f1 = macro_f1(preds, target, self.model.n_classes)
        self.log("val_macro_f1", f1, rank_zero_only=False, sync_dist=False)
        accuracy = float((preds == target).float().mean()) if len(target) else float("nan")
        self.log("val_accuracy", accuracy, rank_zero_only=False, sync_dist=False)

    def configure_optimizers(self):
        return torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )


# ---- plain-torch checkpoint -------------------------------------------------------------------


def save_checkpoint(model: MultimodalClassifier, path: str | Path, meta: Mapping[str, Any]) -> None:
    """Write state_dict + constructor args (spec as JSON) + labels + `meta` with torch.save."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config(),
        "labels": list(model.labels),
        "streams": list(model.streams),
        "window_s": model.window_s,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": json.loads(json.dumps(dict(meta), default=str)),  # plain values only
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, str(path))


def load_classifier(
    path_or_bytes: str | Path | bytes,
) -> tuple[MultimodalClassifier, dict[str, Any]]:
    """Load a `save_checkpoint` file (weights_only): the model in eval mode, with `.spec`,
    `.streams`, `.labels`, `.window_s`, and {'labels', 'streams', 'window_s', 'spec', 'config',
    'meta'}."""
    is_bytes = isinstance(path_or_bytes, (bytes, bytearray))
    source = "<bytes>" if is_bytes else str(path_or_bytes)
    handle = io.BytesIO(path_or_bytes) if is_bytes else str(path_or_bytes)
    try:
        state = torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or foreign files
        raise ValueError(f"{source}: not a readable modalops checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") not in READABLE_FORMATS:
        found = state.get("format") if isinstance(state, dict) else None
        raise ValueError(
            f"{source}: not a modalops classifier checkpoint (expected format "
            f"{' or '.join(sorted(READABLE_FORMATS))}, found {found!r})"
        )
    config = dict(state["config"])
    config.setdefault("encoder_version", READABLE_FORMATS[state["format"]])
    spec = parse_spec(json.loads(config.pop("spec_json")), f"{source} (dataset spec)")
    model = MultimodalClassifier(spec, **config)
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model, {
        "labels": list(state["labels"]),
        "streams": list(state["streams"]),
        "window_s": float(state["window_s"]),
        "spec": spec,
        "config": state["config"],
        "meta": state["meta"],
    }


@torch.no_grad()
def predict_logits(
    model: MultimodalClassifier, samples: Iterable[Mapping[str, Any]], batch_size: int = 64
) -> np.ndarray:
    """Logits [N, n_classes] for raw sample dicts: their `streams` payloads decoded with the
    model's own spec and window, as in training. The one decode path of evaluation and serving."""
    model.eval()
    out: list[np.ndarray] = []
    batch: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []

    def flush():
        inputs = {s: torch.stack([b[0][s] for b in batch]) for s in model.streams}
        presence = torch.stack([b[1] for b in batch])
        out.append(model(inputs, presence).numpy())
        batch.clear()

    for sample in samples:
        batch.append(raw_to_tensors(sample["streams"], model.spec, model.window_s, model.streams))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return np.concatenate(out) if out else np.zeros((0, model.n_classes), dtype=np.float32)


def predict_proba(
    model: MultimodalClassifier, samples: Iterable[Mapping[str, Any]], batch_size: int = 64
) -> np.ndarray:
    """Class probabilities [N, n_classes] (float64, uncalibrated softmax of `predict_logits`)."""
    logits = torch.from_numpy(predict_logits(model, samples, batch_size)).double()
    return torch.softmax(logits, dim=1).numpy()
