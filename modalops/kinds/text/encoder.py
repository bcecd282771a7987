"""The text encoder: one dense layer over the hashed bag of words."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class TextEncoder(nn.Module):
    """[B, dim] hashed bag of words → [B, H]."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_encoder(params: Any, shape: tuple[int, ...], hidden: int, version: int = 3) -> nn.Module:
    """The encoder for bags of `shape` (dim,) -> [B, hidden] (the same in every version)."""
    return TextEncoder(int(shape[0]), hidden)
