"""modalops: the Prefect-free core of a multimodal MLOps platform (kept import-light on purpose)."""

__version__ = "0.1.0"
