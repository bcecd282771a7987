"""The time-series encoder: a small 1-D CNN over [B, C, rows] plus per-channel level statistics."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from modalops.kinds.augment import shift_time


class TimeseriesEncoder(nn.Module):
    """[B,C,T] → [B,H]. The CNN sees the de-meaned signal (the wobble); the per-channel mean
    and log-std (e.g. gravity, a machine's on/off hum level) are passed on beside it."""

    def __init__(self, channels: int, hidden: int, version: int = 3):
        super().__init__()
        c = hidden
        # each channel standardised with statistics of the training windows, so the units a
        # sensor reports in (g or m/s^2, deg/s or rad/s) do not set the scale the CNN sees
        # (version 2, checkpoints of format /2, had none)
        self.norm = nn.BatchNorm1d(channels, affine=False) if version >= 3 else nn.Identity()
        self.net = nn.Sequential(
            nn.Conv1d(channels, c, 7, stride=2, padding=3), nn.ReLU(),
            nn.Conv1d(c, c, 5, stride=2, padding=2), nn.ReLU(),
            nn.AdaptiveMaxPool1d(1), nn.Flatten(),
        )  # fmt: skip
        self.out = nn.Linear(c + 2 * channels, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        if self.training:
            x = shift_time(x, 0.125)
        mean = x.mean(dim=-1, keepdim=True)
        # a one-row window has no sample spread; the unbiased estimate would be NaN
        std = x.std(dim=-1, keepdim=True, correction=1 if x.shape[-1] > 1 else 0)
        stats = torch.cat([mean.squeeze(-1) / 10.0, torch.log(std.squeeze(-1) + 1e-3)], dim=1)
        return F.relu(
            self.out(
                torch.cat([self.net((x - mean) / (std.mean(1, keepdim=True) + 0.1)), stats], dim=1)
            )
        )


def channel_statistics(encoder: nn.Module) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel mean and standard deviation of the training windows, as the encoder's input
    normalisation estimated them; None when it has none (version 2) or never saw a batch."""
    norm = getattr(encoder, "norm", None)
    if not isinstance(norm, nn.BatchNorm1d) or not int(norm.num_batches_tracked or 0):
        return None
    mean = norm.running_mean.detach().cpu().numpy().astype(np.float64)
    return mean, np.sqrt(norm.running_var.detach().cpu().numpy().astype(np.float64))


def build_encoder(params: Any, shape: tuple[int, ...], hidden: int, version: int = 3) -> nn.Module:
    """The encoder for windows of `shape` (channels, rows) -> [B, hidden] (`version` 2: /2)."""
    return TimeseriesEncoder(int(shape[0]), hidden, version)
