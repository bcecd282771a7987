"""A pipeline run's identity and where its artifacts go in the object store."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from modalops.config.data import StoreConfig
from modalops.store import ObjectStore, join_key, open_store


@dataclass(frozen=True)
class RunContext:
    """Passed between tasks instead of live clients (picklable, no secrets)."""

    store_uri: str
    endpoint_url: str | None
    run_key: str
    flow_run_id: str | None = None
    retry_mode: str = "standard"  # the S3 client's retries (StoreConfig)
    max_attempts: int = 8

    @property
    def prefix(self) -> str:
        return join_key("runs", self.run_key)

    def key(self, *parts: str) -> str:
        return join_key(self.prefix, *parts)

    def store(self) -> ObjectStore:
        return open_store(
            self.store_uri,
            endpoint_url=self.endpoint_url,
            retry_mode=self.retry_mode,
            max_attempts=self.max_attempts,
        )


def new_run(store: StoreConfig, flow_run_id: str | None = None) -> RunContext:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return RunContext(
        store_uri=store.uri,
        endpoint_url=store.endpoint_url,
        run_key=f"{stamp}-{uuid.uuid4().hex[:6]}",
        flow_run_id=flow_run_id,
        retry_mode=store.retry_mode,
        max_attempts=store.max_attempts,
    )


def put_frame(store: ObjectStore, key: str, df: pd.DataFrame) -> str:
    """Write a DataFrame as Parquet at `key`."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return store.put_bytes(key, buf.getvalue())


def get_frame(store: ObjectStore, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.get_bytes(key)))


def reference_stats_key(dataset_version: str) -> str:
    """Where a dataset version keeps its summary statistics (the reference for drift checks)."""
    return join_key("datasets", dataset_version, "reference_stats.parquet")
