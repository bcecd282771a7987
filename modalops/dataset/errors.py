"""Errors about user data, shared by the spec, the layout readers and every kind (a leaf module)."""

from __future__ import annotations

MISSING_FILE = "file is missing"


class RawDataError(ValueError):
    """A raw file is missing or unreadable; `path` names it, `problem` says what is wrong."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def fetch_bytes(store, key: str) -> bytes:
    """The bytes at `key` of an ObjectStore; a missing file is a RawDataError naming its URI."""
    try:
        return store.get_bytes(key)
    except FileNotFoundError:
        raise RawDataError(store.uri(key), MISSING_FILE) from None
