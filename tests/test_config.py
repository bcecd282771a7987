"""Config loading: YAML diffs, overrides, and readable refusals of wrong keys and values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modalops.config import ConfigError, PipelineConfig, load_config
from tests.conftest import REPO


def test_defaults_validate_and_every_field_is_described():
    cfg = load_config()
    assert isinstance(cfg, PipelineConfig)

    def walk(model_cls, path=""):
        for name, field in model_cls.model_fields.items():
            assert field.description, f"{path}{name} has no description"
            sub = field.annotation
            if isinstance(sub, type) and hasattr(sub, "model_fields"):
                walk(sub, f"{path}{name}.")

    walk(PipelineConfig)


def test_yaml_then_overrides(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  max_epochs: 3\nalign:\n  mode: none\n")
    cfg = load_config([f], ["train.max_epochs=5", "shard.samples_per_shard=16"])
    assert cfg.train.max_epochs == 5
    assert cfg.align.mode == "none"
    assert cfg.shard.samples_per_shard == 16


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.max_epoch=3", "train.max_epoch: unknown key"),
        ("align.mode=sideways", "align.mode"),
        ("validation.max_bad_fraction=1.5", "validation.max_bad_fraction"),
        ("nosuchsection.x=1", "nosuchsection: unknown key"),
        ("train.devices=2", "devices > 1 needs strategy: ddp"),
    ],
)
def test_wrong_key_or_value_names_the_key(override: str, needle: str):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[override])
    assert needle in str(err.value)


def test_malformed_override_and_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(overrides=["train.max_epochs"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config([tmp_path / "nope.yaml"])


@pytest.mark.parametrize("name", ["demo.yaml", "ci.yaml", "defaults.yaml"])
def test_shipped_configs_are_valid(name: str):
    load_config([REPO / "configs" / name])


def test_defaults_yaml_matches_the_code():
    """configs/defaults.yaml documents the defaults; it must not drift from the models."""
    shipped = yaml.safe_load((REPO / "configs" / "defaults.yaml").read_text())
    assert shipped == PipelineConfig().model_dump(mode="json")
