"""Corruption kinds the demo generator can inject, and the pure functions that inject them.

Each function takes clean bytes/arrays plus a numpy Generator and returns the damaged version
and a short `detail` string; the generator (modalops.demo_data) decides where they apply and
records every injected item, so detection by ingest and validation can be measured
(docs/corruptions.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from modalops_demo import names as schema

# Per-item kinds: RATE is the fraction of items (frames, label intervals) hit across the
# dataset. Per-session kinds: RATE is the fraction of sessions hit.
ITEM_KINDS: tuple[str, ...] = ("jpeg", "label_shift", "label_swap")
SESSION_KINDS: tuple[str, ...] = (
    "truncated_wav",
    "sample_rate",
    "nan_burst",
    "flatline",
    "shuffled_timestamps",
    "missing_modality",
    "unknown_label",
)
# Documented order (docs/corruptions.md): file damage first, then wrong labels.
CORRUPTION_KINDS: tuple[str, ...] = (ITEM_KINDS[0], *SESSION_KINDS, *ITEM_KINDS[1:])

# Labels that look plausible to a person typing them but are not in schema.LABELS.
UNKNOWN_LABELS: tuple[str, ...] = ("near-miss", "Fault", "smoke", "unknown")

# Swaps go to a confusable class (one factor flipped), which is what makes them subtle.
CONFUSABLE: dict[str, tuple[str, ...]] = {
    "normal": ("proximity", "fault"),
    "proximity": ("near_miss", "normal"),
    "fault": ("near_miss", "normal"),
    "near_miss": ("fault", "proximity"),
}


@dataclass(frozen=True)
class CorruptionRecord:
    """One injected defect: its kind, session, affected file (key under the raw root), detail."""

    kind: str
    session_id: str
    file: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def parse_corrupt_specs(specs: list[str]) -> dict[str, float]:
    """`["jpeg=0.05", "nan_burst=0.1"]` -> `{"jpeg": 0.05, "nan_burst": 0.1}`, refusing typos."""
    out: dict[str, float] = {}
    for spec in specs:
        kind, sep, raw = spec.partition("=")
        kind = kind.strip()
        if not sep:
            raise ValueError(f"corruption {spec!r}: expected KIND=RATE, e.g. jpeg=0.05")
        if kind not in CORRUPTION_KINDS:
            raise ValueError(
                f"corruption {spec!r}: unknown kind {kind!r}; expected one of {list(CORRUPTION_KINDS)}"
            )
        try:
            rate = float(raw)
        except ValueError:
            raise ValueError(f"corruption {spec!r}: rate {raw!r} is not a number") from None
        check_rate(kind, rate)
        out[kind] = rate
    return out


def check_rate(kind: str, rate: float) -> None:
    if kind not in CORRUPTION_KINDS:
        raise ValueError(
            f"unknown corruption kind {kind!r}; expected one of {list(CORRUPTION_KINDS)}"
        )
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"corruption {kind}: rate {rate!r} must be a fraction in [0, 1]")


def n_hits(rate: float, n_items: int) -> int:
    """How many of `n_items` a rate hits: at least one for any positive rate, so a tiny demo
    still carries every requested kind."""
    if rate <= 0 or n_items == 0:
        return 0
    return min(n_items, max(1, round(rate * n_items)))


# ---- byte- and array-level damage ------------------------------------------------------------


def corrupt_jpeg(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """Damage JPEG bytes so that decoding fails (not merely a garbled picture)."""
    if rng.random() < 0.5:
        keep = max(20, int(len(data) * rng.uniform(0.3, 0.6)))
        return data[:keep], f"truncated to {keep} of {len(data)} bytes"
    # Overwriting the SOI/APP0 header makes the file unidentifiable as an image.
    junk = rng.integers(0, 256, size=16, dtype=np.uint8).tobytes()
    return junk + data[16:], "header overwritten with 16 random bytes"


def truncate_wav(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """Cut the file mid-data; the RIFF header still claims the full length."""
    header = 44
    keep = header + int((len(data) - header) * rng.uniform(0.3, 0.7))
    keep -= (keep - header) % 2  # whole PCM16 samples, as a crashed writer leaves them
    return data[:keep], f"cut at byte {keep} of {len(data)}"


def resample_audio(samples: np.ndarray, factor: int) -> np.ndarray:
    """Crude decimation by an integer factor (pairwise mean), as a misconfigured recorder does."""
    n = samples.size // factor * factor
    return samples[:n].reshape(-1, factor).mean(axis=1).astype(np.float32)


def nan_bursts(
    values: np.ndarray, rate_hz: float, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    """1-3 runs of NaN (0.5-3 s each) on one or all axes of a (n, 3) telemetry array."""
    out = values.copy()
    runs = []
    for _ in range(int(rng.integers(1, 4))):
        length = max(1, int(rng.uniform(0.5, 3.0) * rate_hz))
        start = int(rng.integers(0, max(1, len(out) - length)))
        axes = slice(None) if rng.random() < 0.5 else int(rng.integers(0, 3))
        out[start : start + length, axes] = np.nan
        runs.append(
            f"rows {start}-{start + length - 1} axis {'all' if axes == slice(None) else axes}"
        )
    return out, "; ".join(runs)


def flatline(values: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One channel stuck at a constant (a dead sensor reports its last value forever)."""
    out = values.copy()
    axis = int(rng.integers(0, 3))
    stuck = float(np.round(out[int(rng.integers(0, len(out))), axis], 3))
    out[:, axis] = stuck
    return out, f"axis {'xyz'[axis]} constant at {stuck}"


def disorder(times: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Reverse a short block of timestamps so the sequence is out of order."""
    out = times.copy()
    length = int(rng.integers(3, 8))
    start = int(rng.integers(1, max(2, len(out) - length)))
    out[start : start + length] = out[start : start + length][::-1].copy()
    return out, f"rows {start}-{start + length - 1} reversed"


def shift_boundaries(
    bounds: np.ndarray, j: int, rng: np.random.Generator, min_len: float = 0.2
) -> tuple[np.ndarray, float]:
    """Shift label interval j (bounds[j]..bounds[j+1]) by 1-3 s, moving its neighbours' shared
    boundaries with it so the labels stay contiguous; the session's ends stay fixed."""
    out = bounds.copy()
    n = len(out) - 1
    if n < 2:
        return out, 0.0  # a single interval covering the session has no inner edge to move
    lo, hi = -np.inf, np.inf
    if j > 0:  # the left edge moves: the previous interval must keep min_len
        lo = max(lo, out[j - 1] + min_len - out[j])
        if j + 1 == n:  # ...and the right edge is the session end, which stays
            hi = min(hi, out[j + 1] - min_len - out[j])
    if j + 1 < n:  # the right edge moves: the next interval must keep min_len
        hi = min(hi, out[j + 2] - min_len - out[j + 1])
        if j == 0:
            lo = max(lo, out[j] + min_len - out[j + 1])
    sign = 1.0 if rng.random() < 0.5 else -1.0
    delta = float(np.clip(sign * rng.uniform(1.0, 3.0), lo, hi))
    if abs(delta) < 0.5:  # too little room on this side: try the other way
        delta = float(np.clip(-sign * rng.uniform(1.0, 3.0), lo, hi))
    delta = round(delta, 2)
    if j > 0:
        out[j] += delta
    if j + 1 < n:
        out[j + 1] += delta
    return out, delta


def swap_label(label: str, rng: np.random.Generator) -> str:
    options = CONFUSABLE.get(label, schema.LABELS)
    return str(options[int(rng.integers(0, len(options)))])
