"""Data stages in one process vs batches of sessions on Dask workers: wall time and speedup.

    .venv/bin/python benchmarks/dask_stages.py                      # 24 sessions x 60 s, 2 workers
    .venv/bin/python benchmarks/dask_stages.py --sessions 8 --duration 30 --workers 2   # quicker

Both sides run the real tasks against a real (temporary) Prefect server: the default path's
`ingest_recordings` → `align_sessions` → the validation evidence (per-sample statistics and the
label check's raw features, `evidence_from_parts`, as the validate task gathers it) in this process,
and the `data_stages_on_dask` subflow on a LocalCluster (its start-up is included: a run pays
it too). The figures go to `<store>/benchmarks/dask_stages.json`, where `modalops plan` reads
them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from modalops.config import load_config
from modalops.dataset.load import load_dataset_spec
from modalops.plan import SPEEDUP_KEY
from modalops.register.tracking import start_pipeline_run
from modalops.runs import new_run
from modalops.services import start_prefect_server
from modalops.store import open_store
from modalops.validate import evidence_from_parts
from modalops_demo.generate import DemoDataConfig, generate_demo_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=24)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds per session")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-sessions", type=int, default=12)
    ap.add_argument("--store", default=".modalops/store", help="where the JSON figures go")
    args = ap.parse_args()

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.data_stages import run_data_stages_on_dask
    from tasks.align import align_sessions
    from tasks.ingest import ingest_recordings

    with tempfile.TemporaryDirectory(prefix="modalops-dask-bench-") as tmp:
        tmp_path = Path(tmp)
        raw = open_store(str(tmp_path / "raw"))
        t0 = time.perf_counter()
        generate_demo_data(raw, DemoDataConfig(sessions=args.sessions, duration_s=args.duration))
        print(
            f"generated {args.sessions} x {args.duration:g} s in {time.perf_counter() - t0:.0f} s"
        )
        cfg = load_config(
            [],
            [
                f"store.uri={tmp_path / 'store'}",
                f"ingest.raw_uri={tmp_path / 'raw'}",
                f"registry.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                "dask.enabled=true",
                f"dask.workers={args.workers}",
                f"dask.batch_sessions={args.batch_sessions}",
            ],
        )
        spec = load_dataset_spec(raw)
        store = open_store(cfg.store.uri)
        server = start_prefect_server(tmp_path / "prefect")
        try:
            with temporary_settings({PREFECT_API_URL: server.url}):
                tracking = start_pipeline_run(
                    cfg.registry.tracking_uri, "bench", run_name="b", tags={}, config={}
                )
                one = new_run(cfg.store)
                stages = {}
                t = time.perf_counter()
                ing = ingest_recordings(one, spec, cfg.ingest, tracking)
                stages["ingest"] = time.perf_counter() - t
                t = time.perf_counter()
                al = align_sessions(one, spec, cfg.ingest.raw_uri, ing, cfg.align, tracking)
                stages["align"] = time.perf_counter() - t
                t = time.perf_counter()
                ev1 = evidence_from_parts(store, al.part_keys, spec, cfg.validation)
                stages["validation evidence"] = time.perf_counter() - t
                serial_s = sum(stages.values())

                two = new_run(cfg.store)
                t = time.perf_counter()
                _, al2, ev2 = run_data_stages_on_dask(two, spec, cfg, tracking)
                dask_s = time.perf_counter() - t
                # a long-lived cluster (dask.address): its workers have imported everything once
                warm_s = _warm_run(cfg, spec, tracking, args.workers)
        finally:
            from prefect.logging.handlers import APILogHandler

            APILogHandler().flush()  # ship buffered logs while the server is still up
            server.stop()
    if al2.n_samples != al.n_samples:
        raise SystemExit(f"outputs differ: {al.n_samples} vs {al2.n_samples} samples")
    # the same evidence (tests/test_dask_stages.py checks every output; this guards the figures)
    pd.testing.assert_frame_equal(ev1.stats, ev2.stats)
    if list(ev1.label_features) != list(ev2.label_features):
        raise SystemExit("outputs differ: the label features were gathered for other streams")
    figures = {
        "sessions": args.sessions,
        "duration_s": args.duration,
        "recorded_hours": args.sessions * args.duration / 3600.0,
        "workers": args.workers,
        "batch_sessions": args.batch_sessions,
        "cpus": os.cpu_count(),
        "stages": ["ingest", "align", "validation evidence"],
        "serial_stage_s": stages,
        "serial_s": serial_s,
        "dask_s": dask_s,
        "speedup_with_cluster_start": serial_s / dask_s,
        "dask_warm_s": warm_s,
        "speedup": serial_s / warm_s,
        "samples": al.n_samples,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = open_store(args.store)
    out.put_text(SPEEDUP_KEY, json.dumps(figures, indent=2))
    print(
        "\n".join(
            [
                f"data stages, {args.sessions} sessions x {args.duration:g} s "
                f"({al.n_samples} samples), {os.cpu_count()} CPUs",
                *(f"  one process  {k:<22} {v:7.1f} s" for k, v in stages.items()),
                f"  one process  {'total':<22} {serial_s:7.1f} s",
                f"  Dask, {args.workers} workers (incl. cluster start) {dask_s:7.1f} s",
                f"  speedup {serial_s / dask_s:.2f}x with the cluster's start",
                f"  Dask, {args.workers} workers, cluster already up {warm_s:7.1f} s",
                f"  speedup {serial_s / warm_s:.2f}x on a running cluster",
                f"wrote {out.uri(SPEEDUP_KEY)}",
            ]
        )
    )


def _warm_run(cfg, spec, tracking, workers: int) -> float:
    """Seconds of the Dask stages on a running LocalCluster, after one run to warm it."""
    from distributed import LocalCluster

    from flows.data_stages import run_data_stages_on_dask

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        on = cfg.model_copy(
            update={"dask": cfg.dask.model_copy(update={"address": cluster.scheduler_address})}
        )
        run_data_stages_on_dask(new_run(cfg.store), spec, on, tracking)  # warm-up
        t = time.perf_counter()
        run_data_stages_on_dask(new_run(cfg.store), spec, on, tracking)
        return time.perf_counter() - t


if __name__ == "__main__":
    main()
