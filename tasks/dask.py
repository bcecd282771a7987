"""Where the data stages' batches run: Prefect's DaskTaskRunner on a local or existing cluster."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modalops.config.dask import DaskConfig


def dask_task_runner(cfg: DaskConfig) -> Any:
    """A DaskTaskRunner on `cfg.address`, else on a local cluster of `cfg.workers` processes
    with one thread each (the stages are CPU-bound Python: threads would share one GIL)."""
    from prefect_dask import DaskTaskRunner

    if cfg.address:
        return DaskTaskRunner(address=cfg.address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": cfg.workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,  # no web UI port per run
        },
    )


def batches(items: Sequence[str], size: int) -> list[list[str]]:
    """`items` in order, `size` at a time (the last batch may be shorter)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
