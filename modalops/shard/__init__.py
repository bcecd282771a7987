"""Shard stage: session-level splits, the WebDataset writer and reader, and the dataset manifest."""

from modalops.shard.shards import (
    DATASETS_PREFIX,
    MANIFEST_FORMAT,
    DatasetManifest,
    SampleReader,
    ShardCheck,
    SplitInfo,
    assign_splits,
    check_shard_bytes,
    dataset_version,
    iter_checked_samples,
    iter_raw_samples,
    iter_tar_samples,
    load_manifest,
    split_columns,
    write_shards,
)

__all__ = [
    "DATASETS_PREFIX",
    "MANIFEST_FORMAT",
    "DatasetManifest",
    "SampleReader",
    "ShardCheck",
    "SplitInfo",
    "assign_splits",
    "check_shard_bytes",
    "dataset_version",
    "iter_checked_samples",
    "iter_raw_samples",
    "iter_tar_samples",
    "load_manifest",
    "split_columns",
    "write_shards",
]
