"""Config section for human review: where the Label Studio server is and how it is reached."""

from __future__ import annotations

from pydantic import Field

from modalops.config.base import Section


class ReviewConfig(Section):
    """Which Label Studio receives the windows batch inference routed to review."""

    url: str | None = Field(
        default=None,
        description="A Label Studio URL (e.g. https://ls.example.org); null: the local server "
        "started by `modalops review start` if one answers, else the import-JSON fallback.",
    )
    home: str = Field(
        default=".modalops/labelstudio",
        description="Directory of the local server: its venv, data dir, pid file and "
        "credentials.json (mode 0600).",
    )
    api_key_env: str = Field(
        default="LABEL_STUDIO_API_KEY",
        description="Environment variable holding the API token for `url` (never logged or "
        "stored by modalops).",
    )
    project_prefix: str = Field(
        default="modalops",
        min_length=1,
        description="Project titles are '<prefix>:<model name>', one project per model.",
    )
    port: int = Field(
        default=8089, ge=1, le=65535, description="Port of the local server (bound to 127.0.0.1)."
    )
