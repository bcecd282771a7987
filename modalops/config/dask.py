"""Where the data stages run: in the flow's process (the default) or fanned out over Dask."""

from __future__ import annotations

from pydantic import Field

from modalops.config.base import Section


class DaskConfig(Section):
    """Ingest, align and validation's per-sample statistics over batches of sessions on Dask
    workers (Prefect's DaskTaskRunner). Off by default: one process, exactly as without it."""

    enabled: bool = Field(
        default=False,
        description="Fan the data stages out over Dask workers; false runs them in one process.",
    )
    workers: int = Field(
        default=2,
        ge=1,
        description="Worker processes of the local cluster (one thread each); also how many tasks "
        "the validation statistics are split into.",
    )
    address: str | None = Field(
        default=None,
        description="Scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786; null: start "
        "a local cluster for the run. Its workers must reach the store and the raw data.",
    )
    batch_sessions: int = Field(
        default=8,
        ge=1,
        description="Sessions per Dask task: larger batches cost less orchestration, smaller ones "
        "spread better over the workers (each task costs ~1 s of Prefect orchestration).",
    )
