"""Audio streams: WAV or FLAC, any rate, resampled to the rate the spec asks for."""

from modalops.kinds.base import Kind

KIND = Kind(
    name="audio",
    package=__name__,
    payload="binary",
    shard_ext="wav",
    cues=("rms_envelope", "none"),
    extensions=(".wav", ".flac"),
    description="one audio file; its first sample is at the clock file's start time",
)
