"""Text streams: timestamped events (notes, transcripts, logs) in JSONL."""

from modalops.kinds.base import Kind

KIND = Kind(
    name="text",
    package=__name__,
    payload="text",
    shard_ext="txt",
    cues=("none",),
    extensions=(".jsonl",),
    sparse=True,
    description="JSON lines, each with a time field and a text field",
)
