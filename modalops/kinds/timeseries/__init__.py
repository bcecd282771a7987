"""Time-series streams: CSV or Parquet tables with a time column and any numeric channels."""

from modalops.kinds.base import Kind

KIND = Kind(
    name="timeseries",
    package=__name__,
    payload="binary",
    shard_ext="npy",
    cues=("magnitude_envelope", "rms_envelope", "none"),
    extensions=(".csv", ".parquet", ".tsv"),
    description="a table with a time column and numeric channel columns",
)
