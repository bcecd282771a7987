"""The image encoder: a small CNN over [B, C, H, W] frames, sized from the stream's params."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class ImageEncoder(nn.Module):
    """[B,C,H,W] → [B,H]. Pools to 4×4 rather than 1×1 so *where* things are (a person in a
    danger zone, a status light in a corner) survives pooling."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        c = hidden
        # BatchNorm after each conv: without it (measured on the demo data) the encoder never
        # left the majority-class plateau, since a person covers ~4% of the low-contrast frame.
        self.net = nn.Sequential(
            nn.Conv2d(channels, c, 5, stride=2, padding=2), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        )  # fmt: skip
        self.out = nn.Linear(16 * c, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # inputs are in [0, 1]; centre them around the typical scene level
        return F.relu(self.out(self.net((x - 0.4) / 0.2)))


def build_encoder(params: Any, shape: tuple[int, ...], hidden: int) -> nn.Module:
    """The encoder for frames of `shape` (C, H, W) -> [B, hidden]."""
    return ImageEncoder(int(shape[0]), hidden)
