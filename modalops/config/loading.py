"""Load a PipelineConfig from YAML files and `key.sub=value` overrides, failing early and readably."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modalops.config.pipeline import PipelineConfig


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key and what was expected."""


def _deep_merge(base: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in diff.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` strings; the value is parsed as YAML (so `3`, `true`, `[a, b]` work)."""
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. train.max_epochs=3")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r}: empty key")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {key}: value {raw!r} is not valid YAML ({exc})") from exc
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {key}: {part!r} is a value, not a section")
            node = nxt
        node[parts[-1]] = value
    return out


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check spelling; see `modalops config show` for valid keys)"
        got = err.get("input")
        got_txt = "" if err["type"] in ("extra_forbidden", "missing") else f" (got {got!r})"
        lines.append(f"  - {loc}: {msg}{got_txt}")
    return "\n".join(lines)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML mapping; an empty file is an empty mapping."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path}: top level must be a mapping, got {type(data).__name__}"
        )
    return data


def load_config(
    paths: list[str | Path] | str | Path | None = None,
    overrides: list[str] | None = None,
) -> PipelineConfig:
    """Defaults, then each YAML file in order (each a diff), then overrides; validated once."""
    if paths is None:
        paths = []
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    data: dict[str, Any] = {}
    for path in paths:
        data = _deep_merge(data, read_yaml(path))
    data = apply_overrides(data, overrides or [])
    source = ", ".join(str(p) for p in paths) or "defaults"
    if overrides:
        source += " + overrides"
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
