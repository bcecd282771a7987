"""Align stage: recover every stream's clock, cut reference-clock windows into multimodal samples.

Modules: `estimate` (clock estimation from sync cues or markers), `windowing` (window bounds
and labels), `session` (one session's assembly), `dataset` (the dataset loop and parts),
`report` (the alignment report and plots). Per-kind work is in `modalops/kinds/<kind>/`.
"""

from modalops.align.dataset import AlignResult, align_dataset, bad_files
from modalops.align.estimate import StreamEstimate, estimate_clocks
from modalops.align.session import AlignedSession, align_session, empty_samples

__all__ = [
    "AlignResult",
    "AlignedSession",
    "StreamEstimate",
    "align_dataset",
    "align_session",
    "bad_files",
    "empty_samples",
    "estimate_clocks",
]
