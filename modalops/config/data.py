"""Config sections for where data lives: the object store, raw recordings and ingestion."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modalops.config.base import Section


class StoreConfig(Section):
    """Where every stage reads and writes artifacts."""

    uri: str = Field(
        default=".modalops/store",
        description="Artifact store: a local directory or s3://bucket/prefix (S3-compatible).",
    )
    endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint URL; when unset, AWS_ENDPOINT_URL or the AWS default is used.",
    )
    retry_mode: Literal["standard", "adaptive"] = Field(
        default="standard",
        description="botocore retry mode for S3 calls: standard (exponential backoff with jitter "
        "on 5xx, throttling and connection errors) or adaptive (standard plus client-side rate "
        "limiting after throttling). docs/faults.md measures both against injected faults.",
    )
    max_attempts: int = Field(
        default=8,
        ge=1,
        le=50,
        description="Attempts per S3 call (first try included) before a store operation fails; "
        "a GetObject body cut off mid-stream is re-read up to this many times too.",
    )


class IngestConfig(Section):
    """How raw recordings are scanned into the catalog."""

    raw_uri: str = Field(
        default=".modalops/raw/demo",
        description="Raw recordings root (local path or s3://bucket/prefix), in the documented layout.",
    )
    spec: str | None = Field(
        default=None,
        description="Dataset spec (YAML) describing the recordings: a local path or s3:// URI. "
        "Unset: dataset.yaml at the raw root (docs/bring-your-own-data.md).",
    )
    max_sessions: int | None = Field(
        default=None, ge=1, description="Ingest only the first N sessions (for quick runs)."
    )
    subject_salt: str = Field(
        default="modalops",
        description="Salt for pseudonymising subject ids (a label, not a secret key).",
    )
