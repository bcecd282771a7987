"""Fault injection: what the store, the registry and the flow survive, as one Markdown table.

    .venv/bin/python benchmarks/faults.py                  # every case (several minutes)
    .venv/bin/python benchmarks/faults.py --ops 50 --only store
    .venv/bin/python benchmarks/faults.py --only mlflow-server   # or: --only crash

Store cases: `--ops` operations (put, get, list in turn) per fault kind through
modalops.testing.fault_proxy at `--rate` in front of moto's S3 server; data lost = objects that
are missing or differ when read back straight from the server afterwards. Pipeline cases (once
each, the tiny CI config on demo data, local store, MLflow on SQLite, a real Prefect server):
a SQLite database held locked during registration, the Prefect server restarted mid-flow, and
two pipelines at once on one registry and a fresh store. `--only mlflow-server`: a real `mlflow
server --host 127.0.0.1` (on SQLite) stopped once evaluation is done, left down (the flow fails;
re-run with it back) or restarted at once (the register task's retries ride it out), with the
pipeline's bounded MLflow HTTP retries. `--only crash`: registration dies once at each of five
points (one MlflowClient call raising, in-process) and the register task's retry finishes it.

Data lost, for the pipeline cases, is counted: a baseline run of the same config with no fault
goes first and is read back (every sample of every split from the shards, by key and content;
the model's versions and aliases from the registry); after each case the same is read back and
compared. A case survives when its flow finished and the comparison finds nothing missing,
nothing extra and the registry as the baseline left it. No case writes prediction rows (none
runs batch inference), so none are counted. The table goes to stdout as Markdown, to be pasted
into docs/faults.md (tests/test_faults.py checks its columns against HEADER).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

HEADER = ("fault", "trials", "survived", "data lost", "recovery")


@dataclass
class Row:
    kind: str
    trials: int
    survived: int
    lost: str
    recovery: str

    def cells(self) -> tuple[str, ...]:
        return (self.kind, str(self.trials), str(self.survived), self.lost, self.recovery)


def markdown_table(rows: list[Row]) -> str:
    """The table as Markdown, HEADER first (a `|` inside a cell escaped)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row.cells()) + " |")
    return "\n".join(lines)


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
    total_bytes = sum(len(v) for v in written.values())
    return Row(
        f"S3 {kind} ({rate:.0%} of requests)",
        ops,
        survived,
        f"{len(lost)} of {len(written)} objects ({lost_bytes} of {total_bytes} B)"
        + (f", {len(extra)} stray" if extra else ""),
        f"{sum(proxy.injected.values())} faults injected, {store.retries} retries "
        f"(botocore {store.retry_mode}, max {store.max_attempts} attempts; cut bodies re-read)",
    )


# ---- pipeline ------------------------------------------------------------------------------------


def tiny_config(root: Path, model_name: str, *extra: str, store: str = "store"):
    from modalops.config import load_config

    return load_config(
        [REPO / "configs" / "ci.yaml"],
        [
            f"store.uri={root / store}",
            f"ingest.raw_uri={root / 'raw'}",
            f"registry.tracking_uri=sqlite:///{root / 'mlflow.db'}",
            f"registry.model_name={model_name}",
            "train.max_epochs=2",
            *extra,
        ],
    )


# ---- what a pipeline case left, counted -----------------------------------------------------


@dataclass
class Left:
    """What a pipeline case left, read back after it: each split's samples (key + content
    digest) from the shards of every dataset version in its store, and its model's versions
    and aliases in the registry."""

    samples: dict[str, set[str]]
    versions: list[str]
    aliases: dict[str, str]

    def registry_state(self) -> str:
        aliases = ", ".join(f"{a} v{v}" for a, v in sorted(self.aliases.items())) or "no aliases"
        return f"versions [{', '.join(self.versions)}], {aliases}"


def sample_digest(sample: dict[str, Any]) -> str:
    """A raw sample (shard.iter_raw_samples) as one digest of its key, label and payloads."""
    digest = hashlib.sha256(f"{sample['key']}|{sample['label']}".encode())
    for stream, payload in sorted(sample["streams"].items()):
        data = payload if isinstance(payload, bytes) else repr(payload).encode()
        digest.update(f"|{stream}:{len(data)}:".encode() + data)
    return digest.hexdigest()


def read_back(cfg) -> Left:
    """Every sample of every dataset version in `cfg`'s store and `cfg`'s model in the registry,
    read again. A registry that cannot be read is an error, not "no versions"."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from modalops.shard import iter_raw_samples, load_manifest
    from modalops.store import open_store

    store = open_store(cfg.store.uri)
    samples: dict[str, set[str]] = {}
    for key in store.list("datasets"):
        found = re.fullmatch(r"datasets/([^/]+)/manifest\.json", key)
        if not found:
            continue
        manifest = load_manifest(store, found.group(1))
        for split in manifest.splits:
            digests = samples.setdefault(split, set())
            digests.update(sample_digest(s) for s in iter_raw_samples(store, manifest, split))
    client = MlflowClient(cfg.registry.tracking_uri)
    name = cfg.registry.model_name
    versions = [str(v.version) for v in client.search_model_versions(f"name = '{name}'")]
    try:
        aliases = dict(client.get_registered_model(name).aliases or {})
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        aliases = {}
    return Left(samples, sorted(versions, key=int), {a: str(v) for a, v in aliases.items()})


def count_loss(lefts: list[Left], base: Left) -> tuple[str, list[bool]]:
    """The "data lost" cell for one case's read-backs (one per trial, or one for a case whose
    trials share a store and model) against the baseline's, and per read-back whether it is
    intact: no sample missing or added, the registry as the baseline left it."""
    lost = extra = 0
    intact = []
    kept: dict[str, int] = {}
    for left in lefts:
        miss = sum(len(d - left.samples.get(s, set())) for s, d in base.samples.items())
        more = sum(len(d - base.samples.get(s, set())) for s, d in left.samples.items())
        for split, digests in base.samples.items():
            kept[split] = kept.get(split, 0) + len(digests & left.samples.get(split, set()))
        lost, extra = lost + miss, extra + more
        intact.append(miss == more == 0 and left.registry_state() == base.registry_state())
    total = sum(len(d) for d in base.samples.values()) * len(lefts)
    runs = f"{len(lefts)} read-backs; " if len(lefts) > 1 else ""
    splits = "/".join(f"{split} {n}" for split, n in kept.items())
    states: dict[str, int] = {}
    for left in lefts:
        states[left.registry_state()] = states.get(left.registry_state(), 0) + 1
    registry = "; ".join(f"{state}" + (f" (x{n})" if n > 1 else "") for state, n in states.items())
    cell = f"{lost} of {total} samples ({runs}{splits} read back)"
    cell += f", {extra} extra" if extra else ""
    return f"{cell}; {registry} (expected {base.registry_state()})", intact


def run_flow(cfg, api: str) -> dict:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.training_pipeline import training_pipeline

    with temporary_settings({PREFECT_API_URL: api}):
        return training_pipeline(cfg)


def baseline_case(root: Path, api: str) -> tuple[Row, Left]:
    """The tiny config with no fault, read back: what every pipeline case is compared with."""
    cfg = tiny_config(root, "faults-baseline")
    started = time.perf_counter()
    summary = run_flow(cfg, api)
    seconds = time.perf_counter() - started
    base = read_back(cfg)
    if not all(base.samples.values()) or base.versions != ["1"]:
        raise SystemExit(
            f"baseline run: read back { ({s: len(d) for s, d in base.samples.items()}) } samples "
            f"per split and {base.registry_state()}; expected every split filled and v1: the "
            "cases below would be compared with nothing"
        )
    splits = "/".join(f"{split} {len(d)}" for split, d in base.samples.items())
    return Row(
        "no fault (the baseline the rows below are compared with)",
        1,
        1,
        f"baseline: {sum(len(d) for d in base.samples.values())} samples ({splits} read back); "
        f"{base.registry_state()}",
        f"flow {seconds:.0f} s, v{summary.get('model_version')}",
    ), base


def sqlite_locked_case(root: Path, api: str, hold_s: float, base: Left) -> Row:
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
    lost, intact = count_loss([read_back(cfg)], base)
    return Row(
        f"MLflow SQLite locked {hold_s:.0f} s at registration",
        1,
        int(ok and all(intact)),
        lost,
        f"{len(attempts)} registration attempt(s) (task retries=2 + SQLAlchemy busy wait), "
        f"flow {time.perf_counter() - started:.0f} s, "
        + (f"v{summary.get('model_version')}" if ok else "failed"),
    )


def prefect_restart_case(
    root: Path, home: Path, port: int, server, after_s: float, base: Left
) -> tuple[Row, Any]:
    """Stop the Prefect server `after_s` into a flow that trains, start it again on the same
    PREFECT_HOME and port; if the flow does not finish, re-run it (cheap: cache hits). It
    survives only if it finished on its own; the re-run is the named recovery."""
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
    finished = "summary" in outcome
    if finished:
        recovery += "finished on its own"
    else:
        print(f"  flow during restart: {outcome.get('error')}")
        t0 = time.perf_counter()
        try:
            run_flow(cfg, api)
            recovery += (
                f"failed ({outcome.get('error', '?')[:60]}); recovery: re-run, finished in "
                f"{time.perf_counter() - t0:.0f} s (counts after it)"
            )
        except Exception as exc:
            recovery += f"failed, re-run failed too ({exc})"[:120]
    lost, intact = count_loss([read_back(cfg)], base)
    row = Row(
        f"Prefect server restarted {after_s:.0f} s into a flow",
        1,
        int(finished and all(intact)),
        lost,
        recovery,
    )
    return row, server


def concurrent_case(root: Path, api: str, base: Left) -> Row:
    """Two pipelines at once, same input and config, on one registry and one store that is
    fresh: both write the same dataset version, train the same models and register at once."""
    cfg = tiny_config(root, "faults-concurrent", store="store-concurrent")
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
    lost, intact = count_loss([read_back(cfg)], base)  # one store, one model: both runs' result
    registered = [
        f"v{r.get('model_version')}" if isinstance(r, dict) else "failed" for r in results
    ]
    return Row(
        "two pipelines at once (two processes), same input and config, one registry, fresh store",
        2,
        sum(ok) if all(intact) else 0,
        lost,
        f"{time.perf_counter() - started:.0f} s; the runs registered {', '.join(registered)}",
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


def mlflow_server_cases(root: Path, api: str, base: Left) -> list[Row]:
    """A real `mlflow server` stopped once evaluation is done: (1) left down: the flow fails
    after the register task's attempts; the server is started again and the flow re-run;
    (2) restarted at once on the same port: the task's retries ride it out."""
    from modalops.register.registry import bound_http_retries

    backend = f"sqlite:///{root / 'mlflow-server' / 'mlflow.db'}"
    services = [start_mlflow_server(backend, root / "mlflow-server")]
    port = int(services[0].url.rsplit(":", 1)[1])
    bounds = bound_http_retries()  # what the register task applies; printed in the table
    budget = ", ".join(f"{k.removeprefix('MLFLOW_HTTP_REQUEST_')}={v}" for k, v in bounds.items())

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
        failed_state = read_back(cfg).registry_state()
        t0 = time.perf_counter()
        try:
            summary = run_flow(cfg, api)
            rerun = f"re-run {time.perf_counter() - t0:.0f} s, v{summary.get('model_version')}"
        except Exception as exc:
            rerun = f"re-run failed ({exc})"[:160]
        lost, _ = count_loss([read_back(cfg)], base)
        clear = error.startswith("TrackingUnavailableError: MLflow tracking server")
        rows.append(
            Row(
                "MLflow server down at registration, stays down",
                1,
                0,  # the flow cannot finish without its registry; recovered below
                f"after the re-run: {lost}. After the failure: {failed_state}",
                f"flow failed {failed_after:.0f} s after the stop, {len(attempts)} register "
                f"attempts ({budget}); {'TrackingUnavailableError naming the URI' if clear else 'unclear error'}; "  # noqa: E501
                f"recovery: server back in {restart_s:.0f} s, {rerun}",
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
        lost, intact = count_loss([read_back(cfg)], base)
        down_s = back[0] - stopped[0] if back else float("nan")
        rows.append(
            Row(
                "MLflow server restarted at registration",
                1,
                int(ok and all(intact)),
                lost,
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


def crash_case(root: Path, api: str, base: Left) -> Row:
    """Registration dies once at each point of CRASH_POINTS (that MlflowClient call raises, in
    the flow's process); the register task's own retry must end with one version, champion."""
    from mlflow import MlflowClient

    results, seconds, lefts = {}, [], []
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
        lefts.append(read_back(cfg))
        results[point] = ok and bool(fired)
    lost, intact = count_loss(lefts, base)
    survived = [p for (p, ok), whole in zip(results.items(), intact, strict=True) if ok and whole]
    return Row(
        f"registration crash mid-way ({len(CRASH_POINTS)} points, one each)",
        len(CRASH_POINTS),
        len(survived),
        lost,
        "the task's retry finished each; flows "
        + "/".join(f"{t:.0f}" for t in seconds)
        + " s; not survived: "
        + (", ".join(p for p in results if p not in survived) or "none"),
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
                # also fills the store's caches and creates the MLflow database, so the cases
                # below fault what they name (not a first run's training or schema migration)
                row, base = baseline_case(tmp, server.url)
                rows.append(row)
                if args.only in (None, "pipeline"):
                    rows.append(sqlite_locked_case(tmp, server.url, args.hold_s, base))
                    row, server = prefect_restart_case(tmp, home, port, server, 12.0, base)
                    rows.append(row)
                if args.only in (None, "mlflow-server"):
                    rows.extend(mlflow_server_cases(tmp, server.url, base))
                if args.only in (None, "crash"):
                    rows.append(crash_case(tmp, server.url, base))
                if args.only in (None, "pipeline", "concurrent"):
                    rows.append(concurrent_case(tmp, server.url, base))
            finally:
                server.stop()
    print()
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
