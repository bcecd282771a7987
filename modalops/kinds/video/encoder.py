"""Video windows hold one frame: the image encoder sees them."""

from modalops.kinds.image.encoder import ImageEncoder, build_encoder

__all__ = ["ImageEncoder", "build_encoder"]
