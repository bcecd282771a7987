"""The contract every stream kind fulfils, and the small types the kinds and stages share.

A kind is a folder `modalops/kinds/<kind>/` whose `__init__.py` defines `KIND = Kind(...)` and
whose modules hold the kind's functions, each with a fixed name and signature:

| module       | functions                                                                    |
|--------------|------------------------------------------------------------------------------|
| `params.py`  | `Params` (pydantic, extra=forbid), `Checks` (pydantic, per-window thresholds) |
| `read.py`    | `read(src: StreamSource) -> Stream`; `ingest(src) -> IngestedStream`         |
| `sync.py`    | `envelope(stream, cue: CueSpec, rate, read_bytes, skip) -> Envelope`          |
| `window.py`  | `window(stream, to_device, starts, ends, centres, ctx, read_bytes, skip)`     |
|              | `-> (present: bool[n], why: str[n], build: Callable[[int], payload])`        |
| `checks.py`  | `window_stats(payloads, params, checks, window_s) -> DataFrame` (one row per |
|              | payload, None payloads give NaN rows); `sample_rules(stream, params, checks)`|
|              | `-> list[Rule]`; `label_features(payload, params, window_s) -> array | None` |
|              | `DRIFT_STATS` (stats compared against the champion's dataset);               |
|              | optional `serving_rules(stream, params, checks, encoder) -> list[Rule]`: what |
|              | the served model checks in each row, where the trained encoder adds ranges   |
|              | (else the served model checks `sample_rules`)                                |
| `codec.py`   | `decode(payload, params, window_s) -> Tensor`; `shape(params, window_s)`;     |
|              | `to_payload(value) -> payload` (serving input -> stored payload)             |
| `encoder.py` | `build_encoder(params, shape, hidden, version) -> nn.Module` ([B, *shape] -> [B, H]; `version`: the checkpoint's encoder version, older ones kept loadable) |

`codec.py` and `encoder.py` import only numpy, torch, PIL and the standard library (plus the
kind's own params): the served model decodes with them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from modalops.dataset.errors import RawDataError, fetch_bytes

__all__ = [
    "Envelope",
    "IngestedStream",
    "Kind",
    "KindParams",
    "RawDataError",
    "Stream",
    "StreamSource",
    "WindowContext",
]


class KindParams(BaseModel):
    """Base of every kind's Params/Checks model: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Kind:
    """A stream kind: static facts plus lazily imported modules holding its functions."""

    name: str
    package: str  # e.g. modalops.kinds.image
    payload: Literal["binary", "text"]  # what one window's payload is in the sample table
    shard_ext: str  # member extension in WebDataset shards, e.g. "jpg", "wav", "npy", "txt"
    cues: tuple[str, ...]  # sync-cue kinds this kind can provide ("none" always allowed)
    extensions: tuple[str, ...]  # file extensions `dataset init` recognises as this kind
    sparse: bool = False  # events (text) rather than a continuous signal: no coverage checks
    description: str = ""

    def module(self, name: str) -> ModuleType:
        return importlib.import_module(f"{self.package}.{name}")

    @property
    def params_model(self) -> type[KindParams]:
        return self.module("params").Params

    @property
    def checks_model(self) -> type[KindParams]:
        return self.module("params").Checks

    @property
    def read(self) -> ModuleType:
        return self.module("read")

    @property
    def sync(self) -> ModuleType:
        return self.module("sync")

    @property
    def windows(self) -> ModuleType:
        return self.module("window")

    @property
    def checks(self) -> ModuleType:
        return self.module("checks")

    @property
    def codec(self) -> ModuleType:
        return self.module("codec")

    @property
    def encoder(self) -> ModuleType:
        return self.module("encoder")


@dataclass
class StreamSource:
    """One stream of one session: where its file is and how to get bytes, with errors naming it."""

    store: Any  # modalops.store.ObjectStore (the raw store)
    session_id: str
    name: str  # the user's stream name
    kind: str
    key: str  # object key of the stream's file, relative to the raw root
    params: Any  # the kind's Params instance
    clock: dict[str, Any] = field(default_factory=dict)  # this stream's clock-file entry

    def uri(self, key: str | None = None) -> str:
        return self.store.uri(self.key if key is None else key)

    def get(self, key: str | None = None) -> bytes:
        """Bytes of `key` (default: the stream's file); RawDataError when it is missing."""
        return fetch_bytes(self.store, self.key if key is None else key)

    def sibling(self, relative: str) -> str:
        """Key of a file next to the stream's file (e.g. a frame named in an index)."""
        folder = self.key.rsplit("/", 1)[0] if "/" in self.key else ""
        return f"{folder}/{relative}" if folder else relative


class Stream:
    """A decoded, timestamped stream on its device clock. Each kind subclasses it."""

    kind: str = ""

    def span(self) -> tuple[float, float] | None:
        """(first, end) device time covered; end includes the last sample's period."""
        raise NotImplementedError


@dataclass
class IngestedStream:
    """What ingest learns about one stream: catalog values, item-level problems, and status."""

    values: dict[str, Any]  # catalog columns: content_hash, n_bytes, duration_s, sample_rate,
    #                         n_items, t_first, t_last, nan_fraction, n_bad_items, width, height,
    #                         n_channels, flat_channels (missing keys are null)
    item_problems: list[tuple[str, str]] = field(default_factory=list)  # (uri, reason) per item
    status: Literal["ok", "quarantined"] = "ok"
    reason: str | None = None  # starts with the file's URI when quarantined


@dataclass
class Envelope:
    """A sync cue on a regular grid: value i is at device time (start_index + i) / rate."""

    values: np.ndarray  # float64, normalised to about [0, 1]
    start_index: int  # grid index of values[0]: grids of all streams share multiples of 1/rate
    rate: float
    valid: np.ndarray  # bool: grid points inside the stream's actual coverage

    @property
    def start_s(self) -> float:
        return self.start_index / self.rate

    def times(self) -> np.ndarray:
        return (self.start_index + np.arange(self.values.size)) / self.rate


@dataclass(frozen=True)
class WindowContext:
    """Windowing settings from the align config that the kinds' `window` functions need."""

    window_s: float
    frame_tolerance_periods: float = 1.5  # image/video: nearest frame farther than this is absent
    min_slice_fraction: float = 0.5  # sampled kinds: fewer samples than this share is absent


ReadBytes = Callable[[str], bytes]
ToDevice = Callable[[np.ndarray], np.ndarray]
