"""The audio encoder: a spectro-temporal CNN over [B, bands, frames] log band spectrograms."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from modalops.kinds.augment import mask_spans, shift_time


class AudioEncoder(nn.Module):
    """[B,F,T] → [B,H]. Keeps time: a spoken word is a sequence of sounds inside the window, not
    a band level (the encoder this replaced pooled time away into 8 frequency zones, which
    suited a machine's steady whine and predicted one class for speech in noise, issue 22).

    - each band standardised with statistics of the training data (a BatchNorm without affine
      parameters: batch statistics while training, their running averages when serving);
    - a second input channel with the window's own mean per band removed: stationary noise
      (hum, babble's long-term spectrum) drops out of it, onsets and formant moves stay;
    - a 2-D convolution front end that halves frequency twice and keeps every frame, then a
      dilated 1-D convolution over time, then mean and max over time (where in the window the
      word falls does not matter);
    - while training only: a random time shift (up to an eighth of the window) and one frequency
      and one time mask (SpecAugment, Park et al. 2019), both safe for a window's label.
    """

    def __init__(self, bands: int, hidden: int):
        super().__init__()
        c, f = max(2 * hidden, 16), max(hidden, 8)
        self.norm = nn.BatchNorm1d(bands, affine=False)
        self.front = nn.Sequential(
            nn.Conv2d(2, f, 3, stride=(2, 1), padding=1), nn.BatchNorm2d(f), nn.ReLU(),
            nn.Conv2d(f, f, 3, stride=(2, 1), padding=1), nn.BatchNorm2d(f), nn.ReLU(),
            nn.AdaptiveAvgPool2d((4, None)),
        )  # fmt: skip
        self.temporal = nn.Sequential(
            nn.Conv1d(4 * f, c, 3, padding=1), nn.BatchNorm1d(c), nn.ReLU(),
            nn.Conv1d(c, c, 3, padding=2, dilation=2), nn.BatchNorm1d(c), nn.ReLU(),
        )  # fmt: skip
        self.out = nn.Linear(2 * c, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        if self.training:
            x = mask_spans(shift_time(x, 0.125), dims=(1, 2), fraction=0.125)
        local = x - x.mean(dim=-1, keepdim=True)
        h = self.front(torch.stack([x, local], dim=1))  # [B, c, 4, T]
        h = self.temporal(h.flatten(1, 2))  # [B, c, T]
        return F.relu(self.out(torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)))


class BandLevelEncoder(nn.Module):
    """The encoder of checkpoints before issue 22 (format /2): [B,F,T] → [B,H], time pooled away
    into 8 frequency zones. Kept so models registered with it still load and can be re-scored
    by the promotion gate; new models get `AudioEncoder`."""

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


def build_encoder(params: Any, shape: tuple[int, ...], hidden: int, version: int = 3) -> nn.Module:
    """The encoder for spectrograms of `shape` (bands, frames) -> [B, hidden]; `version` 2 is
    the one checkpoints of format /2 were trained with."""
    return AudioEncoder(int(shape[0]), hidden) if version >= 3 else BandLevelEncoder(hidden)
