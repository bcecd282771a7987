"""The multimodal classifier (one small encoder per modality + masked fusion) and its Lightning wrapper.

No I/O beyond `save_checkpoint`/`load_classifier`, which write plain `torch.save` files that load
with torch alone: the served model must not need Lightning or this repository installed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from modalops import preprocess

try:  # Lightning is a training dependency only; serving imports this module without it
    from lightning.pytorch import LightningModule
except ImportError:  # pragma: no cover - exercised only in a torch-only consumer environment
    LightningModule = nn.Module  # type: ignore[assignment,misc]

MODALITIES = preprocess.MODALITIES
LABELS = preprocess.LABELS
CHECKPOINT_FORMAT = "modalops.classifier/1"


class ImageEncoder(nn.Module):
    """[B,3,64,64] → [B,H]. Pools to 4×4 rather than 1×1 so *where* things are (a person in the
    danger zone, the status light in the top-right corner) survives pooling."""

    def __init__(self, hidden: int):
        super().__init__()
        c = hidden
        # BatchNorm after each conv: without it (measured on the demo data) the encoder never
        # left the majority-class plateau, since a person covers ~4% of the low-contrast frame.
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 5, stride=2, padding=2), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        )  # fmt: skip
        self.out = nn.Linear(16 * c, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # inputs are in [0, 1]; centre them around the typical scene level
        return F.relu(self.out(self.net((x - 0.4) / 0.2)))


class AudioEncoder(nn.Module):
    """[B,F,T] band spectrogram → [B,H]. Pools time away but keeps 8 frequency zones, since a fault
    is a whine in a particular band (1.5-3 kHz), not a level."""

    def __init__(self, hidden: int):
        super().__init__()
        c = hidden
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.AdaptiveAvgPool2d((8, 1)), nn.Flatten(),
        )  # fmt: skip
        self.out = nn.Linear(8 * c, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.out(self.net(x.unsqueeze(1))))


class VibrationEncoder(nn.Module):
    """[B,3,100] → [B,H]. The CNN sees the de-meaned signal (the wobble); the per-channel mean
    and log-std (gravity, machine on/off hum level) are passed on beside it."""

    def __init__(self, hidden: int):
        super().__init__()
        c = hidden
        self.net = nn.Sequential(
            nn.Conv1d(3, c, 7, stride=2, padding=3), nn.ReLU(),
            nn.Conv1d(c, c, 5, stride=2, padding=2), nn.ReLU(),
            nn.AdaptiveMaxPool1d(1), nn.Flatten(),
        )  # fmt: skip
        self.out = nn.Linear(c + 6, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        std = x.std(dim=-1, keepdim=True)
        stats = torch.cat([mean.squeeze(-1) / 10.0, torch.log(std.squeeze(-1) + 1e-3)], dim=1)
        return F.relu(
            self.out(
                torch.cat([self.net((x - mean) / (std.mean(1, keepdim=True) + 0.1)), stats], dim=1)
            )
        )


class TextEncoder(nn.Module):
    """[B,256] hashed bag of words → [B,H]."""

    def __init__(self, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(preprocess.TEXT_DIM, hidden), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


_ENCODERS = {
    "camera": ImageEncoder,
    "audio": AudioEncoder,
    "vibration": VibrationEncoder,
    "notes": TextEncoder,
}


class MultimodalClassifier(nn.Module):
    """Encoders for `modalities`, masked concatenation, MLP head. One modality = unimodal baseline.

    Absent modalities (presence 0) contribute a zero embedding, and the presence bits themselves
    are fed to the head so it can tell "absent" from "present but quiet".
    """

    def __init__(self, modalities: Sequence[str], hidden_dim: int = 32, n_classes: int = 4):
        super().__init__()
        unknown = [m for m in modalities if m not in MODALITIES]
        if unknown or not modalities:
            raise ValueError(
                f"modalities {list(modalities)}: expected a non-empty subset of {MODALITIES}"
            )
        self.modalities = [m for m in MODALITIES if m in modalities]  # canonical order
        self.hidden_dim = hidden_dim
        self.n_classes = n_classes
        self._columns = [MODALITIES.index(m) for m in self.modalities]
        self.encoders = nn.ModuleDict({m: _ENCODERS[m](hidden_dim) for m in self.modalities})
        n = len(self.modalities)
        self.head = nn.Sequential(
            # GELU, not ReLU: a narrow head (tests use width 4) can start with every unit dead
            nn.Linear(n * hidden_dim + n, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, n_classes),
        )

    def config(self) -> dict[str, Any]:
        return {
            "modalities": list(self.modalities),
            "hidden_dim": self.hidden_dim,
            "n_classes": self.n_classes,
        }

    def forward(self, inputs: Mapping[str, torch.Tensor], presence: torch.Tensor) -> torch.Tensor:
        mask = presence[:, self._columns]
        parts = [
            self.encoders[m](inputs[m]) * mask[:, i : i + 1] for i, m in enumerate(self.modalities)
        ]
        return self.head(torch.cat([*parts, mask], dim=1))


def drop_modalities(
    presence: torch.Tensor, p: float, columns: Sequence[int], generator=None
) -> torch.Tensor:
    """Modality dropout: hide each of `columns` with chance `p`, never hiding all present ones.

    Trains the fused model to cope with a missing camera or microphone (issue 5, item 1).
    """
    if p <= 0 or len(columns) < 2:
        return presence
    cols = torch.as_tensor(list(columns), device=presence.device)
    sub = presence[:, cols]
    keep = (torch.rand(sub.shape, generator=generator, device=presence.device) >= p).to(sub.dtype)
    dropped = sub * keep
    # a sample that would lose every modality keeps its original mask
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
        modalities: Sequence[str],
        hidden_dim: int = 32,
        n_classes: int = 4,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-4,
        modality_dropout: float = 0.0,
        class_weights: Sequence[float] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = MultimodalClassifier(modalities, hidden_dim, n_classes)
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        self._val_preds: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def forward(self, inputs, presence):
        return self.model(inputs, presence)

    def training_step(self, batch, batch_idx):
        inputs, presence, target = batch
        if self.hparams.modality_dropout > 0:
            presence = drop_modalities(presence, self.hparams.modality_dropout, self.model._columns)
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
        f1 = macro_f1(preds, target, self.hparams.n_classes)
        self.log("val_macro_f1", f1, rank_zero_only=False, sync_dist=False)

    def configure_optimizers(self):
        return torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )


# ---- plain-torch checkpoint -------------------------------------------------------------------


def save_checkpoint(model: MultimodalClassifier, path: str | Path, meta: Mapping[str, Any]) -> None:
    """Write state_dict + constructor args + labels + `meta` with torch.save (no pickled classes)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config(),
        "labels": list(LABELS[: model.n_classes]),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, str(path))


def load_classifier(
    path_or_bytes: str | Path | bytes,
) -> tuple[MultimodalClassifier, dict[str, Any]]:
    """Load a `save_checkpoint` file; returns the model in eval mode and {'labels', 'config', 'meta'}."""
    source = "<bytes>" if isinstance(path_or_bytes, (bytes, bytearray)) else str(path_or_bytes)
    handle = (
        io.BytesIO(path_or_bytes)
        if isinstance(path_or_bytes, (bytes, bytearray))
        else str(path_or_bytes)
    )
    try:
        state = torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or foreign files
        raise ValueError(f"{source}: not a readable modalops checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{source}: not a modalops classifier checkpoint (expected format {CHECKPOINT_FORMAT})"
        )
    model = MultimodalClassifier(**state["config"])
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model, {"labels": state["labels"], "config": state["config"], "meta": state["meta"]}


@torch.no_grad()
def predict_proba(
    model: MultimodalClassifier, raws: Iterable[Mapping[str, Any]], batch_size: int = 64
) -> np.ndarray:
    """Class probabilities [N, n_classes] for raw samples (same preprocessing as training)."""
    model.eval()
    out: list[np.ndarray] = []
    batch: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []

    def flush():
        inputs = {m: torch.stack([b[0][m] for b in batch]) for m in model.modalities}
        presence = torch.stack([b[1] for b in batch])
        out.append(torch.softmax(model(inputs, presence), dim=1).numpy())
        batch.clear()

    for raw in raws:
        batch.append(preprocess.raw_to_tensors(raw, model.modalities))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return np.concatenate(out) if out else np.zeros((0, model.n_classes), dtype=np.float32)
