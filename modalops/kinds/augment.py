"""Training-time augmentations the kinds' encoders share: a shift along time and masked spans.

Plain torch on a batch, so an encoder calls them in `forward` under `self.training` and the
served model never sees them. Each is safe for a window's label only where a kind says so: a
shift of a fraction of the window keeps what the window holds; a masked band or stretch of time
(SpecAugment, Park et al. 2019) hides part of the evidence, never changes it.
"""

from __future__ import annotations

import torch


def shift_time(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Each sample of [B, ..., T] rolled along its last axis by up to `fraction` of T (either way),
    the wrapped-around part zeroed (a shift, not a loop)."""
    t = x.shape[-1]
    most = int(t * fraction)
    if most < 1:
        return x
    shifts = torch.randint(-most, most + 1, (x.shape[0],), device=x.device)
    idx = torch.arange(t, device=x.device)
    src = idx[None, :] - shifts[:, None]  # [B, T]: where each output step reads from
    valid = (src >= 0) & (src < t)
    src = src.clamp(0, t - 1)
    view = (x.shape[0],) + (1,) * (x.dim() - 2) + (t,)
    gathered = torch.gather(x, -1, src.reshape(view).expand_as(x))
    return gathered * valid.reshape(view).to(x.dtype)


def mask_spans(x: torch.Tensor, dims: tuple[int, ...], fraction: float) -> torch.Tensor:
    """Zero one random span of up to `fraction` of its length along each axis in `dims` of
    [B, ...], per sample (inputs are standardised, so zero is the training mean)."""
    out = x
    for dim in dims:
        n = x.shape[dim]
        most = int(n * fraction)
        if most < 1:
            continue
        width = torch.randint(0, most + 1, (x.shape[0],), device=x.device)
        start = (torch.rand(x.shape[0], device=x.device) * (n - width + 1)).long()
        idx = torch.arange(n, device=x.device)
        hit = (idx[None, :] >= start[:, None]) & (idx[None, :] < (start + width)[:, None])
        shape = [x.shape[0]] + [1] * (x.dim() - 1)
        shape[dim] = n
        out = out.masked_fill(hit.reshape(shape), 0.0)
    return out
