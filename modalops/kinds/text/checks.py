"""Validation of text streams: per-window text statistics, their rules, and label-check features."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pandas as pd

from modalops.dataset.columns import stat_column
from modalops.kinds.payloads import is_absent
from modalops.validate.result import Rule

DRIFT_STATS: tuple[str, ...] = ("len",)
BUCKETS = 32
_TOKEN = re.compile(r"[a-z0-9]+")


def _one(value: object) -> tuple:
    """(len, valid_utf8): bytes must decode; str must encode and hold no U+FFFD."""
    if is_absent(value):
        return (np.nan, pd.NA)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return (float(len(value)), False)
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a bad decode upstream
        return (float(len(text)), False)
    # U+FFFD is what a lenient decoder leaves behind where the bytes were not UTF-8.
    return (float(len(text)), "\ufffd" not in text)


def window_stats(payloads: list, params, checks, window_s: float) -> pd.DataFrame:
    """len (characters) and valid_utf8; NaN / NA where the window carries no text."""
    rows = [_one(v) for v in payloads]
    return pd.DataFrame(
        {
            "len": pd.array([r[0] for r in rows], dtype="float64"),
            "valid_utf8": pd.array([r[1] for r in rows], dtype="boolean"),
        }
    )


def sample_rules(stream: str, params, checks) -> list[Rule]:
    return [
        Rule(f"{stream}_utf8", stat_column(stream, "valid_utf8"), "in_set", stream,
             value_set=(True,)),
        Rule(f"{stream}_length", stat_column(stream, "len"), "between", stream,
             max_value=checks.max_len),
    ]  # fmt: skip


def catalog_rules(stream: str, params, checks) -> list[Rule]:
    """Events are sparse: nothing to check on a whole text stream beyond what ingest does."""
    return []


def label_features(payload, params, window_s: float) -> np.ndarray | None:
    """Counts of word tokens hashed into 32 buckets (crc32: stable across processes)."""
    if is_absent(payload):
        return None
    out = np.zeros(BUCKETS, dtype=np.float32)
    for token in _TOKEN.findall(str(payload).lower()):
        out[zlib.crc32(token.encode()) % BUCKETS] += 1.0
    return out


def session_relative(block: np.ndarray, present: np.ndarray, session_median) -> list[np.ndarray]:
    """Token counts as they are (words carry their meaning in any session)."""
    return [block]
