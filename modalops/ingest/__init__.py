"""Ingest stage: the catalog and quarantine of a dataset's raw files, as its spec declares."""

from modalops.ingest.recordings import (
    BASE_CATALOG_COLUMNS,
    IngestResult,
    catalog_columns,
    ingest_recordings,
    pseudonymise,
    session_items,
)

__all__ = [
    "BASE_CATALOG_COLUMNS",
    "IngestResult",
    "catalog_columns",
    "ingest_recordings",
    "pseudonymise",
    "session_items",
]
