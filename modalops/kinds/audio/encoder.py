"""The audio encoder: a small CNN over [B, bands, frames] spectrograms."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class AudioEncoder(nn.Module):
    """[B,F,T] band spectrogram → [B,H]. Pools time away but keeps 8 frequency zones, since a
    machine's whine sits in a particular band (the demo's is 1.5-3 kHz), not in the level."""

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


def build_encoder(params: Any, shape: tuple[int, ...], hidden: int) -> nn.Module:
    """The encoder for spectrograms of `shape` (bands, frames) -> [B, hidden]."""
    return AudioEncoder(hidden)
