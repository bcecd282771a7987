"""Fault injection: what the store, the registry and the flow survive, as one table.

    .venv/bin/python benchmarks/faults.py                  # every case (several minutes)
    .venv/bin/python benchmarks/faults.py --ops 50 --only store
    .venv/bin/python benchmarks/faults.py --only mlflow-server   # or: --only crash

Store cases: `--ops` operations (put, get, list in turn) per fault kind through
modalops.testing.fault_proxy at `--rate` in front of moto's S3 server; data lost = objects that
are missing or differ when read back straight from the server afterwards. Pipeline cases (once
each, the tiny CI config on demo data, local store, MLflow on SQLite, a real Prefect server):
a SQLite database held locked during registration, the Prefect server restarted mid-flow, and
two pipelines at once on one store and registry. `--only mlflow-server`: a real `mlflow server
--host 127.0.0.1` (on SQLite) stopped once evaluation is done, left down (the flow fails; re-run
with it back) or restarted at once (the register task's retries ride it out), with the
pipeline's bounded MLflow HTTP retries. `--only crash`: registration dies once at each of five
points (one MlflowClient call raising, in-process) and the register task's retry finishes it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modalops.services import (  # noqa: E402
    free_port,
    start_mlflow_server,
    start_prefect_server,
    start_s3_server,
)
from modalops.store import S3Store  # noqa: E402
from modalops.testing.fault_proxy import FaultProxy, FaultRates  # noqa: E402


@dataclass
class Row:
    kind: str
    trials: int
    survived: int
    lost: str
    recovery: str


# ---- store --------------------------------------------------------------------------------------


def store_case(kind: str, rate: float, ops: int, s3_url: str, bucket: str) -> Row:
    rates = FaultRates(**{kind: rate}, slow_s=0.3)
    prefix = f"s3://{bucket}/{kind}"
    survived, written = 0, {}
    with FaultProxy(s3_url, rates, seed=hash(kind) % 1000) as proxy:
        store = S3Store(prefix, endpoint_url=proxy.url, max_attempts=10)
        for i in range(ops):
            try:
                if i % 3 == 0:
                    key, data = f"o/{i:03d}.bin", os.urandom(1000 + (i * 7919) % 200_000)
                    store.put_bytes(key, data)
                    written[key] = data
                elif i % 3 == 1 and written:
                    key = sorted(written)[i % len(written)]
                    assert store.get_bytes(key) == written[key]
                else:
                    assert store.list("o") == sorted(written)
                survived += 1
            except Exception as exc:  # counted, not fatal: the table says how many failed
                print(f"  {kind} op {i} failed: {exc}")
    direct = S3Store(prefix, endpoint_url=s3_url)
    lost = [k for k, v in written.items() if not direct.exists(k) or direct.get_bytes(k) != v]
    extra = sorted(set(direct.list()) - set(written))
    lost_bytes = sum(len(written[k]) for k in lost)
    return Row(
        f"S3 {kind} ({rate:.0%} of requests)",
        ops,
        survived,
        f"{len(lost)} objects / {lost_bytes} B" + (f", {len(extra)} stray" if extra else ""),
        f"{sum(proxy.injected.values())} faults injected, {store.retries} retries "
        f"(botocore {store.retry_mode}, max {store.max_attempts} attempts; cut bodies re-read)",
    )


# ---- pipeline ------------------------------------------------------------------------------------


def tiny_config(root: Path, model_name: str, *extra: str):
    from modalops.config import load_config

    return load_config(
        [REPO / "configs" / "ci.yaml"],
        [
            f"store.uri={root / 'store'}",
            f"ingest.raw_uri={root / 'raw'}",
            f"registry.tracking_uri=sqlite:///{root / 'mlflow.db'}",
            f"registry.model_name={model_name}",
            "train.max_epochs=2",
            *extra,
        ],
    )


def versions_of(cfg) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(cfg.registry.tracking_uri)
    return sorted(
        str(v.version) for v in client.search_model_versions(f"name = '{cfg.registry.model_name}'")
    )


def champion_of(cfg) -> str | None:
    from mlflow import MlflowClient

    from modalops.register.registry import current_champion

    return current_champion(MlflowClient(cfg.registry.tracking_uri), cfg.registry.model_name)


def run_flow(cfg, api: str) -> dict:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.training_pipeline import training_pipeline

    with temporary_settings({PREFECT_API_URL: api}):
        return training_pipeline(cfg)


def sqlite_locked_case(root: Path, api: str, hold_s: float) -> Row:
    """Another connection holds an exclusive transaction on the MLflow database for `hold_s`
    from the moment registration starts; the task's retries must leave exactly one version."""
    import modalops.register.registry as registry

    cfg = tiny_config(root, "faults-locked")
    real = registry.log_and_register
    attempts = []

    def locked(*args, **kwargs):
        attempts.append(time.time())
        if len(attempts) == 1:
            ready = threading.Event()

            def hold() -> None:
                con = sqlite3.connect(str(root / "mlflow.db"), timeout=30, isolation_level=None)
                con.execute("BEGIN EXCLUSIVE")
                ready.set()
                time.sleep(hold_s)
                con.execute("COMMIT")
                con.close()

            threading.Thread(target=hold, daemon=True).start()
            ready.wait()
        return real(*args, **kwargs)

    registry.log_and_register = locked
    try:
        started = time.perf_counter()
        try:
            summary = run_flow(cfg, api)
            ok = True
        except Exception as exc:
            print(f"  sqlite-locked flow failed: {exc}")
            ok, summary = False, {}
    finally:
        registry.log_and_register = real
    versions = versions_of(cfg)
    return Row(
        f"MLflow SQLite locked {hold_s:.0f} s at registration",
        1,
        int(ok and len(versions) == 1 and champion_of(cfg) == versions[0]),
        f"0 samples; versions {versions}",
        f"{len(attempts)} registration attempt(s) (task retries=2 + SQLAlchemy busy wait), "
        f"flow {time.perf_counter() - started:.0f} s, v{summary.get('model_version')}",
    )


def prefect_restart_case(root: Path, home: Path, port: int, server, after_s: float) -> Row:
    """Stop the Prefect server `after_s` into a flow that trains, start it again on the same
    PREFECT_HOME and port; if the flow does not finish, re-run it (cheap: cache hits)."""
    api = server.url
    cfg = tiny_config(root, "faults-prefect", "train.seed=11")  # a new key: it trains
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["summary"] = run_flow(cfg, api)
        except BaseException as exc:  # noqa: BLE001 - reported in the table
            outcome["error"] = f"{type(exc).__name__}: {exc}"[:200]

    started = time.perf_counter()
    thread = threading.Thread(target=target)
    thread.start()
    time.sleep(after_s)
    server.stop()
    down = time.perf_counter()
    time.sleep(3)
    server = start_prefect_server(home, port=port)
    restarted = time.perf_counter() - down
    thread.join(timeout=600)
    first_s = time.perf_counter() - started
    recovery = f"server down {restarted:.0f} s; flow {first_s:.0f} s: "
    if "summary" in outcome:
        recovery += "finished on its own"
        ok = True
    else:
        print(f"  flow during restart: {outcome.get('error')}")
        t0 = time.perf_counter()
        try:
            run_flow(cfg, api)
            ok = True
            recovery += (
                f"failed ({outcome.get('error', '?')[:60]}); re-run finished in "
                f"{time.perf_counter() - t0:.0f} s"
            )
        except Exception as exc:
            ok = False
            recovery += f"failed, re-run failed too ({exc})"[:120]
    versions = versions_of(cfg)
    row = Row(
        f"Prefect server restarted {after_s:.0f} s into a flow",
        1,
        int(ok and len(versions) == 1),
        f"0 samples; versions {versions}",
        recovery,
    )
    return row, server


def concurrent_case(root: Path, api: str) -> Row:
    """Two pipelines at once on one store and one registry (same input and config)."""
    cfg = tiny_config(root, "faults-concurrent", "train.seed=23")
    # two processes: Prefect's in-process engine and the YAML parser are not thread-safe
    # (two flows in threads of one process failed in ruamel's scanner before any of our code)
    cfg_path = root / "concurrent.json"
    cfg_path.write_text(cfg.model_dump_json())
    code = (
        "import json, sys; from modalops.config import PipelineConfig; "
        "from flows.training_pipeline import training_pipeline; "
        "s = training_pipeline(PipelineConfig.model_validate_json(open(sys.argv[1]).read())); "
        "open(sys.argv[2], 'w').write(json.dumps(s, default=str))"
    )
    env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(cfg_path), str(root / f"concurrent-{i}.json")],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=open(root / f"concurrent-{i}.log", "w"),  # noqa: SIM115
        )
        for i in range(2)
    ]
    results: list = []
    for i, proc in enumerate(procs):
        proc.wait(timeout=900)
        out = root / f"concurrent-{i}.json"
        if proc.returncode == 0 and out.exists():
            results.append(json.loads(out.read_text()))
        else:
            print((root / f"concurrent-{i}.log").read_text()[-3000:])
            results.append(RuntimeError(f"exit {proc.returncode}"))
    ok = [isinstance(r, dict) for r in results]
    versions = versions_of(cfg)
    champion = champion_of(cfg)
    from modalops.shard import load_manifest
    from modalops.store import open_store

    store = open_store(cfg.store.uri)
    intact = all(
        load_manifest(store, r["dataset_version"]).version == r["dataset_version"]
        for r in results
        if isinstance(r, dict)
    )
    return Row(
        "two pipelines at once, one store + registry",
        2,
        sum(ok) if intact and champion is not None else 0,
        f"0 samples; versions {versions}, champion v{champion}",
        f"{time.perf_counter() - started:.0f} s; registered "
        f"{[r.get('model_version') if isinstance(r, dict) else 'failed' for r in results]}",
    )


# ---- MLflow tracking server and registration crashes ---------------------------------------------


@contextlib.contextmanager
def after_evaluation(hook):
    """The flow's evaluate task with `hook` run once it completes (just before registration)."""
    import flows.training_pipeline as pipeline

    real = pipeline.evaluate_classifiers
    pipeline.evaluate_classifiers = real.with_options(on_completion=[lambda *_: hook()])
    try:
        yield
    finally:
        pipeline.evaluate_classifiers = real


@contextlib.contextmanager
def counted_register_attempts(attempts: list[float]):
    """Each register attempt's first MLflow call (the parent run's tags) appends its time."""
    import tasks.register

    real = tasks.register.version_tags

    def counted(tracking):
        attempts.append(time.perf_counter())
        return real(tracking)

    tasks.register.version_tags = counted
    try:
        yield
    finally:
        tasks.register.version_tags = real


def mlflow_server_cases(root: Path, api: str) -> list[Row]:
    """A real `mlflow server` stopped once evaluation is done: (1) left down: the flow fails
    after the register task's attempts; the server is started again and the flow re-run;
    (2) restarted at once on the same port: the task's retries ride it out."""
    from mlflow import MlflowClient

    from modalops.register.registry import bound_http_retries, current_champion

    backend = f"sqlite:///{root / 'mlflow-server' / 'mlflow.db'}"
    services = [start_mlflow_server(backend, root / "mlflow-server")]
    port = int(services[0].url.rsplit(":", 1)[1])
    bounds = bound_http_retries()  # what the register task applies; printed in the table
    budget = ", ".join(f"{k.removeprefix('MLFLOW_HTTP_REQUEST_')}={v}" for k, v in bounds.items())

    def versions(name: str) -> list[str]:
        client = MlflowClient(services[-1].url)
        return sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'"))

    def cfg_for(name: str):
        return tiny_config(root, name, f"registry.tracking_uri={services[-1].url}")

    rows = []
    try:
        # ---- left down ---------------------------------------------------------------------
        cfg = cfg_for("faults-mlflow-down")
        attempts: list[float] = []
        stopped: list[float] = []

        def stop() -> None:
            services[-1].stop()
            stopped.append(time.perf_counter())

        error = ""
        with after_evaluation(stop), counted_register_attempts(attempts):
            try:
                run_flow(cfg, api)
            except Exception as exc:  # expected: reported in the table
                error = f"{type(exc).__name__}: {exc}"
        failed_after = time.perf_counter() - stopped[0] if stopped else float("nan")
        print(f"  server left down: {error[:600]}")
        t0 = time.perf_counter()
        services.append(start_mlflow_server(backend, root / "mlflow-server", port=port))
        restart_s = time.perf_counter() - t0
        left = versions(cfg.registry.model_name)
        t0 = time.perf_counter()
        try:
            summary = run_flow(cfg, api)
            rerun = f"re-run {time.perf_counter() - t0:.0f} s, v{summary.get('model_version')}"
        except Exception as exc:
            rerun = f"re-run failed ({exc})"[:160]
        after = versions(cfg.registry.model_name)
        champion = current_champion(MlflowClient(services[-1].url), cfg.registry.model_name)
        clear = error.startswith("TrackingUnavailableError: MLflow tracking server")
        rows.append(
            Row(
                "MLflow server down at registration, stays down",
                1,
                0,  # the flow cannot finish without its registry; recovered below
                f"0 samples; versions {left} after the failure, {after} after the re-run",
                f"flow failed {failed_after:.0f} s after the stop, {len(attempts)} register "
                f"attempts ({budget}); {'TrackingUnavailableError naming the URI' if clear else 'unclear error'}; "  # noqa: E501
                f"server back in {restart_s:.0f} s; {rerun}, champion v{champion}",
            )
        )

        # ---- restarted at once ----------------------------------------------------------------
        cfg = cfg_for("faults-mlflow-restart")
        attempts.clear()
        back: list[float] = []

        def restart() -> None:
            services[-1].stop()
            stopped[:] = [time.perf_counter()]

            def start() -> None:
                services.append(start_mlflow_server(backend, root / "mlflow-server", port=port))
                back.append(time.perf_counter())

            threading.Thread(target=start, daemon=True).start()

        started = time.perf_counter()
        with after_evaluation(restart), counted_register_attempts(attempts):
            try:
                summary = run_flow(cfg, api)
                ok, note = True, f"v{summary.get('model_version')}"
            except Exception as exc:
                ok, note = False, f"failed: {exc}"[:160]
        got = versions(cfg.registry.model_name)
        champion = current_champion(MlflowClient(services[-1].url), cfg.registry.model_name)
        down_s = back[0] - stopped[0] if back else float("nan")
        rows.append(
            Row(
                "MLflow server restarted at registration",
                1,
                int(ok and got == ["1"] and champion == "1"),
                f"0 samples; versions {got}, champion v{champion}",
                f"server down {down_s:.0f} s (a restart); {len(attempts)} register attempt(s), "
                f"flow {time.perf_counter() - started:.0f} s, {note}",
            )
        )
    finally:
        for service in services:
            service.stop()
    return rows


CRASH_POINTS = {
    # (MlflowClient method, raise when, raise after the call went through)
    "before the version": ("create_model_version", lambda *a, **k: True, False),
    "version created, reply lost": ("create_model_version", lambda *a, **k: True, True),
    "before alias challenger": (
        "set_registered_model_alias", lambda n, alias, v: alias == "challenger", False,
    ),
    "gate recorded, before champion": (
        "set_registered_model_alias", lambda n, alias, v: alias == "champion", False,
    ),
    "champion set, before the last tag": (
        "set_model_version_tag", lambda n, v, key, value: key == "promotion.decision", False,
    ),
}  # fmt: skip


def crash_once(real, when, after: bool, message: str, fired: list[str]):
    """`real` (an MlflowClient method) raising RuntimeError(message) at the first call where
    `when(*args)` holds: before it reaches MLflow, or (`after`) once it has."""

    def faulty(self, *args, **kwargs):
        if not fired and when(*args, **kwargs):
            fired.append(message)
            if after:
                real(self, *args, **kwargs)
            raise RuntimeError(message)
        return real(self, *args, **kwargs)

    return faulty


def crash_case(root: Path, api: str) -> Row:
    """Registration dies once at each point of CRASH_POINTS (that MlflowClient call raises, in
    the flow's process); the register task's own retry must end with one version, champion."""
    from mlflow import MlflowClient

    results, seconds = {}, []
    for i, (point, (method, when, after)) in enumerate(CRASH_POINTS.items()):
        cfg = tiny_config(root, f"faults-crash-{i}")
        real = getattr(MlflowClient, method)
        fired: list[str] = []
        setattr(
            MlflowClient, method, crash_once(real, when, after, f"injected crash at {point}", fired)
        )
        started = time.perf_counter()
        try:
            run_flow(cfg, api)
            ok = True
        except Exception as exc:
            print(f"  crash at {point}: flow failed: {exc}")
            ok = False
        finally:
            setattr(MlflowClient, method, real)
        seconds.append(time.perf_counter() - started)
        got, champion = versions_of(cfg), champion_of(cfg)
        results[point] = (ok and bool(fired) and got == ["1"] and champion == "1", got)
    survived = sum(ok for ok, _ in results.values())
    return Row(
        f"registration crash mid-way ({len(CRASH_POINTS)} points, one each)",
        len(CRASH_POINTS),
        survived,
        "0 samples; versions " + ", ".join(str(v) for _, v in results.values()),
        "the task's retry finished each (one version, champion); flows "
        + "/".join(f"{t:.0f}" for t in seconds)
        + " s; failed: "
        + (", ".join(p for p, (ok, _) in results.items() if not ok) or "none"),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=50, help="store operations per fault kind")
    ap.add_argument("--rate", type=float, default=0.2, help="share of requests faulted")
    ap.add_argument("--only", choices=["store", "pipeline", "concurrent", "mlflow-server", "crash"])
    ap.add_argument("--hold-s", type=float, default=8.0, help="SQLite lock held this long")
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "modalops-bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "modalops-bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="modalops-faults-") as tmp:
        tmp = Path(tmp)
        if args.only in (None, "store"):
            import boto3

            s3 = start_s3_server(tmp / "moto")
            try:
                bucket = "modalops-faults"
                boto3.client("s3", endpoint_url=s3.url).create_bucket(Bucket=bucket)
                for kind in ("error", "throttle", "reset", "slow"):
                    rows.append(store_case(kind, args.rate, args.ops, s3.url, bucket))
            finally:
                s3.stop()
        if args.only != "store":
            from modalops.store import open_store
            from modalops_demo.generate import DemoDataConfig, generate_demo_data

            generate_demo_data(
                open_store(str(tmp / "raw")), DemoDataConfig(sessions=8, duration_s=30.0, seed=5)
            )
            home, port = tmp / "prefect", free_port()
            server = start_prefect_server(home, port=port)
            try:
                if args.only != "concurrent":
                    with contextlib.suppress(Exception):  # a warm-up run fills the caches
                        run_flow(tiny_config(tmp, "faults-warmup"), server.url)
                if args.only in (None, "pipeline"):
                    rows.append(sqlite_locked_case(tmp, server.url, args.hold_s))
                    row, server = prefect_restart_case(tmp, home, port, server, after_s=12.0)
                    rows.append(row)
                if args.only in (None, "mlflow-server"):
                    rows.extend(mlflow_server_cases(tmp, server.url))
                if args.only in (None, "crash"):
                    rows.append(crash_case(tmp, server.url))
                if args.only in (None, "pipeline", "concurrent"):
                    rows.append(concurrent_case(tmp, server.url))
            finally:
                server.stop()
    print("\n| fault | trials | survived | data lost | recovery |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.kind} | {r.trials} | {r.survived} | {r.lost} | {r.recovery} |")


if __name__ == "__main__":
    main()
