"""Stream kinds, registered in one place: each kind is one folder under modalops/kinds/.

A stage never branches on a stream's name: it asks the stream's kind (from the dataset spec)
for the reader, sync cue, window slicing, checks, codec and encoder. Adding a sensor type is
one new folder here plus one line in KINDS.
"""

from __future__ import annotations

import importlib
from functools import cache

from modalops.kinds.base import Kind

# kind name -> package holding its `KIND` (modalops/kinds/<kind>/__init__.py)
KINDS: dict[str, str] = {
    "image": "modalops.kinds.image",
    "video": "modalops.kinds.video",
    "audio": "modalops.kinds.audio",
    "timeseries": "modalops.kinds.timeseries",
    "text": "modalops.kinds.text",
}


def kind_names() -> list[str]:
    return list(KINDS)


@cache
def get_kind(name: str) -> Kind:
    """The registered kind `name`; KeyError names the known kinds."""
    if name not in KINDS:
        raise KeyError(f"unknown stream kind {name!r}; expected one of {kind_names()}")
    return importlib.import_module(KINDS[name]).KIND


__all__ = ["KINDS", "Kind", "get_kind", "kind_names"]
