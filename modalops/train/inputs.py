"""Raw payloads → model tensors with the dataset spec, shared by the DataModule, evaluation and
the served model (no train/serve skew).

Each stream is decoded by its kind's codec (`modalops/kinds/<kind>/codec.py`) with the stream's
params from the spec; this module only loops over the spec's streams and builds the presence mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from modalops.dataset.spec import DatasetSpec
from modalops.kinds.payloads import is_absent


@dataclass(frozen=True)
class StreamCodec:
    """One stream's decoder: its name, kind, typed params and tensor shape."""

    name: str
    kind: str
    params: Any
    shape: tuple[int, ...]
    codec: Any  # the kind's codec module

    def decode(self, payload: Any, window_s: float) -> torch.Tensor:
        try:
            return self.codec.decode(payload, self.params, window_s)
        except ValueError as exc:
            raise ValueError(f"stream {self.name!r} ({exc})") from None


class SpecCodecs:
    """Every spec stream's codec for one window length, built once (params validated once)."""

    def __init__(self, spec: DatasetSpec, window_s: float):
        self.spec = spec
        self.window_s = float(window_s)
        self.streams: list[StreamCodec] = []
        for name in spec.stream_names:
            kind = spec.kind_of(name)
            params = spec.params(name)
            codec = kind.codec
            shape = tuple(int(d) for d in codec.shape(params, self.window_s))
            self.streams.append(StreamCodec(name, kind.name, params, shape, codec))
        self.by_name = {s.name: s for s in self.streams}

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.streams]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {s.name: s.shape for s in self.streams}

    def __call__(
        self, streams: Mapping[str, Any], wanted: Sequence[str] | None = None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        unknown = [w for w in (wanted or ()) if w not in self.by_name]
        if unknown:
            raise ValueError(
                f"streams {unknown} are not in dataset spec {self.spec.name!r} ({self.names})"
            )
        wanted_set = set(self.names if wanted is None else wanted)
        tensors = {
            s.name: self.decode_one(s.name, streams if s.name in wanted_set else {})
            for s in self.streams
        }
        return tensors, self.presence(streams)

    def decode_one(self, name: str, streams: Mapping[str, Any]) -> torch.Tensor:
        """Stream `name`'s tensor from its payload in `streams`: zeros when absent."""
        payload = streams.get(name)
        return self.by_name[name].decode(None if is_absent(payload) else payload, self.window_s)

    def presence(self, streams: Mapping[str, Any]) -> torch.Tensor:
        """float32 [S]: 1 where the spec stream's payload is present, in spec order."""
        return torch.tensor(
            [float(not is_absent(streams.get(s.name))) for s in self.streams], dtype=torch.float32
        )


_CACHE: dict[tuple[int, float], SpecCodecs] = {}


def spec_codecs(spec: DatasetSpec, window_s: float) -> SpecCodecs:
    """The (cached) SpecCodecs of `spec` at `window_s`; the cache holds the spec, so ids stay unique."""
    key = (id(spec), float(window_s))
    hit = _CACHE.get(key)
    if hit is None or hit.spec is not spec:
        if len(_CACHE) > 64:
            _CACHE.clear()
        hit = _CACHE[key] = SpecCodecs(spec, window_s)
    return hit


def input_shapes(spec: DatasetSpec, window_s: float) -> dict[str, tuple[int, ...]]:
    """Tensor shape of every spec stream (without the batch dimension)."""
    return spec_codecs(spec, window_s).shapes()


def raw_to_tensors(
    streams: Mapping[str, Any],
    spec: DatasetSpec,
    window_s: float,
    wanted: Sequence[str] | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Payloads keyed by stream name → (tensor per spec stream, presence float32 [S]).

    S is every spec stream, in spec order. A missing key, None, NaN or an empty payload is an
    absent stream: zero tensor, presence 0. `wanted` limits decoding to what a model uses (a
    single-stream baseline skips the other streams' STFT and JPEG work); the others come back as
    zeros but keep their true presence bit. A bad payload raises ValueError naming the stream.
    """
    return spec_codecs(spec, window_s)(streams, wanted)
