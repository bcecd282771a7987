"""Typed pipeline configuration: one pydantic model per flow, loaded from YAML plus overrides."""

from modalops.config.loading import ConfigError, apply_overrides, load_config
from modalops.config.pipeline import PipelineConfig

__all__ = ["ConfigError", "PipelineConfig", "apply_overrides", "load_config"]
