"""Video payloads are single frames re-encoded as JPEG: the image codec decodes them."""

from modalops.kinds.image.codec import decode, shape, to_payload

__all__ = ["decode", "shape", "to_payload"]
