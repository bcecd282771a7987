"""The image encoder: a small CNN over [B, C, H, W] frames, sized from the stream's params."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class ImageEncoder(nn.Module):
    """[B,C,H,W] → [B,H]. Pools to 4×4 rather than 1×1 so *where* things are (a person in a
    danger zone, a status light in a corner) survives pooling."""

    def __init__(self, channels: int, hidden: int, version: int = 3):
        super().__init__()
        c = hidden
        # each channel standardised with statistics of the training frames (batch statistics
        # while training, their running averages when serving), not a scene level fixed for
        # the demo (version 2, checkpoints of format /2: (x - 0.4) / 0.2)
        self.norm = nn.BatchNorm2d(channels, affine=False) if version >= 3 else FixedScale(0.4, 0.2)
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
        return F.relu(self.out(self.net(self.norm(x))))


class FixedScale(nn.Module):
    """(x - centre) / scale with constants: the input scaling of version-2 encoders."""

    def __init__(self, centre: float, scale: float):
        super().__init__()
        self.centre, self.scale = centre, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.centre) / self.scale


def build_encoder(params: Any, shape: tuple[int, ...], hidden: int, version: int = 3) -> nn.Module:
    """The encoder for frames of `shape` (C, H, W) -> [B, hidden] (`version` 2: format /2)."""
    return ImageEncoder(int(shape[0]), hidden, version)
