"""Prefect artifacts published by the stage tasks (markdown summaries shown in the UI)."""

from __future__ import annotations

import re

from prefect.artifacts import create_markdown_artifact


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """A markdown artifact; keys must be lowercase letters, digits and dashes."""
    safe = re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")
    create_markdown_artifact(key=safe, markdown=markdown, description=description)


def frame_markdown(df, max_rows: int = 40) -> str:
    """A DataFrame as a markdown table (pandas' to_markdown needs tabulate; this does not)."""
    if df is None or len(df) == 0:
        return "_(none)_"
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.head(max_rows).itertuples(index=False):
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    if len(df) > max_rows:
        lines.append(f"\n_… {len(df) - max_rows} more rows_")
    return "\n".join(lines)
