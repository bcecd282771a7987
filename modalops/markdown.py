"""Markdown for people: figures rounded to what they mean, and tables narrow enough for a pane.

Prefect artifacts, the MLflow texts and the CLI printouts are read, not parsed: a float such as
`12.118220730649366` (issue 24) says no more than `12.12` and pushes a table past its pane.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SIGNIFICANT = 4  # significant digits of a figure: enough for a metric, a ppm or a second


def figure(value: Any, significant: int = SIGNIFICANT) -> str:
    """A value as text, floats to `significant` digits (`12.12`, `0.01799`, `3.4e+06`);
    NaN and infinities as `n/a` and `inf`; bools, ints and strings as they are; lists and
    mappings item by item."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.{significant}g}"
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        try:
            return figure(value.item(), significant)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {figure(v, significant)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(figure(v, significant) for v in value)
    return str(value)


def percent(share: float | None, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage (`4.8%`); None or NaN as `n/a`."""
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return "n/a"
    return f"{100 * share:.{digits}f}%"


def cell(value: Any, width: int | None = None) -> str:
    """A table cell: the rounded figure, pipes escaped, cut to `width` characters with `…`."""
    text = figure(value).replace("|", "/").replace("\n", " ")
    if width is not None and len(text) > width:
        text = text[: width - 1].rstrip() + "…"
    return text


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], width: int | None = None) -> str:
    """A markdown table; every cell rounded and at most `width` characters."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v, width) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def bullets(items: Mapping[str, Any]) -> str:
    """`- **key**: value` lines, values rounded."""
    return "\n".join(f"- **{k}**: {figure(v)}" for k, v in items.items())


def frame_table(df, max_rows: int = 40, width: int | None = None) -> str:
    """A DataFrame as a markdown table (pandas' to_markdown needs tabulate; this does not)."""
    if df is None or len(df) == 0:
        return "_(none)_"
    out = table([str(c) for c in df.columns], df.head(max_rows).itertuples(index=False), width)
    if len(df) > max_rows:
        out += f"\n\n_… {len(df) - max_rows} more rows_"
    return out
