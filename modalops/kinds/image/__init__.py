"""Image streams: frames (JPEG or PNG, any size, grey or colour) listed in a timestamp index."""

from modalops.kinds.base import Kind

KIND = Kind(
    name="image",
    package=__name__,
    payload="binary",
    shard_ext="img",
    cues=("roi_brightness", "none"),
    extensions=(".jpg", ".jpeg", ".png"),
    description="frames listed in an index table (time column + file column)",
)
