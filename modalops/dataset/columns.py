"""Column and key names of the tables the stages exchange, derived from the dataset spec.

The aligned-sample table has one row per window: the base columns below, then per stream
`has__<stream>` (bool presence) and `x__<stream>` (the window's payload: bytes or text, as the
stream's kind says), then the spec's metadata columns.
"""

from __future__ import annotations

SPLITS: tuple[str, ...] = ("train", "val", "test")
BASE_COLUMNS: tuple[str, ...] = (
    "session_id", "window_index", "t_start", "t_end", "label", "label_overlap", "boundary",
    "align_confidence",
)  # fmt: skip
SHARD_META_EXT = "json"  # label, label_index, session_id, window_index, metadata, presence


def presence_column(stream: str) -> str:
    return f"has__{stream}"


def payload_column(stream: str) -> str:
    return f"x__{stream}"


def stat_column(stream: str, stat: str) -> str:
    """Column of a per-window validation statistic of one stream, e.g. `front_cam__brightness`."""
    return f"{stream}__{stat}"


def sample_columns(spec) -> list[str]:
    """Every column of the aligned-sample table for `spec` (a DatasetSpec), in order."""
    streams = spec.stream_names
    return [
        *BASE_COLUMNS,
        *(presence_column(s) for s in streams),
        *(payload_column(s) for s in streams),
        *spec.meta_columns,
    ]


def sample_key(session_id: str, window_index: int) -> str:
    """WebDataset key of one window; unique across the dataset, no dots (webdataset splits on them)."""
    return f"{session_id}__{window_index:06d}".replace(".", "_")


def shard_member(stream: str, ext: str) -> str:
    """Tar member suffix of one stream's payload: `<stream>.<ext>` (stream names have no dots)."""
    return f"{stream}.{ext}"
