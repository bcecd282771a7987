"""What the gate needs of the aligned samples, gathered a part at a time: the per-sample statistics
and the label check's raw features. Neither holds a payload, so validation's memory is that of
one part plus a few hundred bytes per sample, however many parts there are (benchmarks/
cost_growth.py). Each part's evidence is independent of the others given the dataset's window
length, so batches of parts may be gathered on Dask workers and merged in part order."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from modalops.config.validate import ValidateConfig
from modalops.memory import release_freed_memory
from modalops.runs import get_frame
from modalops.store import ObjectStore
from modalops.validate.label_check import LabelFeatures, label_check_streams, raw_label_features
from modalops.validate.stats import sample_stats, window_length


@dataclass
class SampleEvidence:
    """One statistics row per sample (`sample_stats`) and, when the label check is on, its
    streams' raw label features row-aligned with them (`raw_label_features`)."""

    stats: pd.DataFrame
    label_features: LabelFeatures = field(default_factory=dict)


def sample_evidence(
    samples: pd.DataFrame, spec, cfg: ValidateConfig, window_s: float
) -> SampleEvidence:
    """The evidence of some aligned samples; `window_s` is the whole dataset's window length."""
    stats = sample_stats(samples, spec, window_s=window_s)
    raw = (
        raw_label_features(samples, spec, label_check_streams(spec, cfg)) if cfg.label_check else {}
    )
    return SampleEvidence(stats, raw)


def merge_evidence(pieces: Iterable[SampleEvidence]) -> SampleEvidence:
    """The pieces' evidence in their order, as `sample_evidence` gives it for all their samples."""
    pieces = list(pieces)
    if not pieces:
        raise ValueError("merge_evidence: no evidence to merge (no aligned parts)")
    streams = list(pieces[0].label_features)
    if any(list(p.label_features) != streams for p in pieces):
        raise ValueError("merge_evidence: the pieces were gathered for different label streams")
    stats = pd.concat([p.stats for p in pieces], ignore_index=True)
    raw = {s: [f for p in pieces for f in p.label_features[s]] for s in streams}
    return SampleEvidence(stats, raw)


def parts_window_length(store: ObjectStore, part_keys: list[str]) -> float:
    """The samples' window length (median t_end - t_start) over every part, read from those two
    columns only: each part's statistics need the whole dataset's."""
    # whole bytes, then two columns decoded: an object-store stream cannot seek
    times = [
        pd.read_parquet(io.BytesIO(store.get_bytes(key)), columns=["t_start", "t_end"])
        for key in part_keys
    ]
    return window_length(pd.concat(times, ignore_index=True)) if times else float("nan")


def evidence_from_parts(
    store: ObjectStore,
    part_keys: list[str],
    spec,
    cfg: ValidateConfig,
    window_s: float | None = None,
) -> SampleEvidence:
    """Gather the evidence of the aligned parts in `store`, one part in memory at a time."""
    if not part_keys:
        raise ValueError(
            "validate: there are no aligned samples (every session was skipped or quarantined; "
            "the align report says why)"
        )
    if window_s is None:
        window_s = parts_window_length(store, part_keys)
    pieces = []
    for key in part_keys:
        pieces.append(sample_evidence(get_frame(store, key), spec, cfg, window_s))
        release_freed_memory()  # the part's pages, before the next part is read
    return merge_evidence(pieces)
