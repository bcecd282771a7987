"""Spectral features shared by the sampled kinds' label-check features (audio, timeseries)."""

from __future__ import annotations

import numpy as np


def log_band_energies(power: np.ndarray, freqs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """log10 of the power summed in each [edges[i], edges[i+1]) band."""
    idx = np.searchsorted(edges, freqs, side="right") - 1
    ok = (idx >= 0) & (idx < len(edges) - 1)
    bands = np.bincount(idx[ok], weights=power[ok], minlength=len(edges) - 1)
    return np.log10(bands + 1e-10).astype(np.float32)
