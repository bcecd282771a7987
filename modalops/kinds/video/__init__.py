"""Video streams: MP4/MKV files whose frames carry presentation timestamps (decoded with PyAV)."""

from modalops.kinds.base import Kind

KIND = Kind(
    name="video",
    package=__name__,
    payload="binary",
    shard_ext="img",
    cues=("roi_brightness", "none"),
    extensions=(".mp4", ".mkv", ".mov", ".avi", ".webm"),
    description="a video file; frame times are its presentation timestamps",
)
