"""Prefect artifacts: markdown summaries the UI shows, on a task run or on the flow run."""

from __future__ import annotations

import re

from prefect.artifacts import create_markdown_artifact

from modalops.markdown import frame_table


def _artifact_key(key: str) -> str:
    """Artifact keys must be lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """A markdown artifact of the task run (and flow run) it is created in."""
    create_markdown_artifact(key=_artifact_key(key), markdown=markdown, description=description)


def publish_flow_summary(key: str, markdown: str, description: str) -> None:
    """A markdown artifact of the flow run itself: called from the flow body, outside any task,
    so the flow run's Artifacts tab shows it (issue 24: it read "None")."""
    publish_markdown(key, markdown, description)


def frame_markdown(df, max_rows: int = 40, width: int | None = None) -> str:
    """A DataFrame as a markdown table, figures rounded (modalops.markdown.frame_table)."""
    return frame_table(df, max_rows=max_rows, width=width)
