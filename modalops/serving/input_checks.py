"""What the served model checks in each input row, with the rules validation applies to windows.

Each stream's kind gives its `serving_rules` (`modalops/kinds/<kind>/checks.py`: the per-window
validation rules, plus what the trained encoder adds, e.g. a time series' plausible value range
from the training statistics its input normalisation learnt) and its `window_stats`; a row breaks
a rule where `Rule.mask` says so, exactly as the validation gate rejects a window. Nothing here
knows a kind or a stream by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modalops.dataset.columns import stat_column
from modalops.kinds.payloads import is_absent


@dataclass(frozen=True)
class InputScreen:
    """Per input row: the problems found ("<stream>: <rule> = <observed> (expected ...)") and
    the streams it lacks."""

    issues: list[list[str]]
    missing: list[list[str]]


def serving_rules(spec: Any, streams: Sequence[str], encoders: Mapping[str, Any]) -> dict:
    """{stream: its kind's serving rules} for the model's `streams` (encoders by stream name): a
    kind's `serving_rules` where it adds what the trained encoder knows, else the per-window
    validation rules (`sample_rules`) as they are."""
    out = {}
    for name in streams:
        checks = spec.kind_of(name).checks
        args = (name, spec.params(name), spec.checks(name))
        served = getattr(checks, "serving_rules", None)
        out[name] = (
            checks.sample_rules(*args) if served is None else served(*args, encoders.get(name))
        )
    return out


def _observed(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


def screen_inputs(
    raws: Sequence[Mapping[str, Any]], spec: Any, rules: Mapping[str, list], window_s: float
) -> InputScreen:
    """Each row's broken rules and absent streams, for the streams `rules` names.

    `raws` are the rows as stored payloads (`pyfunc.rows_to_raw`). A row without any of them is
    an issue too (validation's `any_stream_present`): its answer would be the model's prior.
    """
    n = len(raws)
    issues: list[list[str]] = [[] for _ in range(n)]
    missing = [[s for s in rules if is_absent(row.get(s))] for row in raws]
    for name, stream_rules in rules.items():
        payloads = [None if is_absent(row.get(name)) else row.get(name) for row in raws]
        kind = spec.kind_of(name)
        stats = kind.checks.window_stats(payloads, spec.params(name), spec.checks(name), window_s)
        stats = stats.rename(columns=lambda c, s=name: stat_column(s, c))
        for rule in stream_rules:
            for i in np.flatnonzero(rule.mask(stats)):
                note = f", {rule.note}" if rule.note else ""
                issues[i].append(
                    f"{name}: {rule.check} = {_observed(stats[rule.column].iloc[i])} "
                    f"(expected {rule.expected}{note})"
                )
    for i, absent in enumerate(missing):
        if rules and len(absent) == len(rules):
            issues[i].append(f"no stream present (expected at least one of {list(rules)})")
    return InputScreen(issues, missing)
