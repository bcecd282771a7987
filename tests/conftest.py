"""Shared fixtures: real local services (moto's S3 server, a Prefect server) and tiny configs."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modalops.services import Service, start_prefect_server, start_s3_server

REPO = Path(__file__).resolve().parents[1]


def suite_cache_dir() -> Path:
    """Where the suite keeps the venvs it builds (Label Studio's, the registry consumer's):
    $MODALOPS_TEST_CACHE, else ~/.cache/modalops-tests. Outside the clone, so a fresh clone on
    a machine that ran the suite before reuses them (each is named by the versions it holds
    and complete only with its stamp); a fresh machine builds them once, minutes each."""
    chosen = os.environ.get("MODALOPS_TEST_CACHE") or Path.home() / ".cache" / "modalops-tests"
    return Path(chosen)


# Overrides of configs/ci.yaml for tests of where a pipeline's records land rather than of its
# models: the fused model alone, no label-noise cross-validation, a short bootstrap.
QUICK_PIPELINE = (
    "train.baselines=false",
    "train.max_epochs=1",
    "validation.label_check=false",
    "evaluate.robustness=false",
    "evaluate.skew=false",
    "evaluate.n_boot=10",
    "evaluate.latency_samples=4",
)


@pytest.fixture(scope="session", autouse=True)
def decoded_cache_dir(tmp_path_factory) -> Path:
    """The training decode cache of this test session (not the machine's shared one)."""
    folder = tmp_path_factory.mktemp("decoded-cache")
    os.environ["MODALOPS_DECODED_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[Service]:
    """moto in server mode on 127.0.0.1: a real S3-compatible HTTP endpoint, per test session."""
    # Dummy credentials for the moto endpoint only; set before any boto3 client exists.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "modalops-test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "modalops-test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = start_s3_server(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch) -> str:
    """A fresh, empty bucket on the moto server (AWS_ENDPOINT_URL points there); its s3:// URI."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.url)

    name = f"modalops-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server.url).create_bucket(Bucket=name)
    return f"s3://{name}"


def _label_studio_venv() -> Path:
    from modalops.review.service import LABEL_STUDIO_VERSION, VENV_ENV

    default = suite_cache_dir() / f"labelstudio-{LABEL_STUDIO_VERSION}" / "venv"
    return Path(os.environ.get(VENV_ENV) or default)


def _needs_label_studio(item: pytest.Item) -> bool:
    return "label_studio" in getattr(item, "fixturenames", ())


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group marks
def pytest_collection_modifyitems(config, items) -> None:
    """Dask's local cluster leaves threads behind in this process; a DataLoader forking its
    workers after it had one exit with code 1 (seen in a full run, never alone). The Dask test
    goes last, so no test forks after it (the pipeline itself trains with num_workers 0, or in a
    child process with train.isolated; docs/scale.md).

    Under pytest-xdist (`make test`: two workers, --dist loadgroup) the tests that need Label
    Studio form one group, so one worker starts one Label Studio, and the group goes first, so
    it does not end the run as a long tail on one worker. Run serially they keep their place,
    which gives the background install more time."""
    xdist = "PYTEST_XDIST_WORKER" in os.environ
    items.sort(
        key=lambda item: (
            not (xdist and _needs_label_studio(item)),
            "test_dask_stages" in item.nodeid,
        )
    )
    for item in items:
        if _needs_label_studio(item):
            item.add_marker(pytest.mark.xdist_group("label_studio"))


def pytest_collection_finish(session) -> None:
    """Start installing Label Studio's own venv (first time on a machine: minutes) in a
    background process as soon as a collected test needs it, so the install overlaps other
    tests. A process, not a thread: tests fork DataLoader workers, and forking a process with a
    running thread is not safe. The fixture waits for it (the install holds a file lock)."""
    if not any(_needs_label_studio(item) for item in session.items):
        return
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0":
        return  # every xdist worker collects the same items; one install process is enough
    import subprocess
    import sys

    from modalops.review.service import VENV_ENV

    venv = _label_studio_venv()
    # `modalops review install`, the body of `make review-venv` (docs/review.md), into the
    # suite's venv; a failure here is reported by the fixture, which runs the same install again
    subprocess.Popen(
        [sys.executable, "-m", "modalops.cli", "review", "install", "--home", str(venv.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, VENV_ENV: str(venv)},
    )


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory) -> Iterator[dict]:
    """A started Label Studio 1.23.2 (its own venv, a temp home, a free port on 127.0.0.1)."""
    from modalops.review.service import credentials, start_label_studio, stop_label_studio
    from modalops.services import free_port

    venv = _label_studio_venv()
    home = tmp_path_factory.mktemp("labelstudio-home")
    port = free_port()
    state = {"home": home, "port": port, "venv": venv}
    state["service"] = start_label_studio(home, port=port, venv=venv, timeout_s=900)
    state["url"] = state["service"].url
    creds = credentials(home)
    state.update(token=creds["token"], email=creds["email"], password=creds["password"])
    try:
        yield state
    finally:
        stop_label_studio(home)
        state["service"].stop()


def _postgres_answers(dsn: str) -> bool:
    """Whether `user@host:port` accepts a trust-auth connection to its `postgres` database."""
    import psycopg

    try:
        with psycopg.connect(f"postgresql://{dsn}/postgres", connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _initdb() -> Path | None:
    """Debian's PostgreSQL server binaries (package `postgresql`, installed by make
    system-deps when no server answers), newest version first."""
    import glob
    import shutil

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    which = shutil.which("initdb")
    return Path(found[0]) if found else (Path(which) if which else None)


@contextlib.contextmanager
def private_postgres() -> Iterator[str]:
    """A PostgreSQL cluster of our own in a fresh temp folder (initdb, trust auth, 127.0.0.1, a
    free port; as root it runs as the `postgres` user, since initdb refuses root, in a folder
    that user can reach); yields `user@host:port`, stops it and removes the folder on exit."""
    import shutil
    import subprocess
    import tempfile

    from modalops.services import free_port

    initdb = _initdb()
    if initdb is None:
        pytest.fail(
            "no PostgreSQL answers on 127.0.0.1:5432 and no initdb to start one: run "
            "`make system-deps` (installs Debian's postgresql) or set MODALOPS_TEST_PG"
        )
    data = Path(tempfile.mkdtemp(prefix="modalops-test-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    db = str(data / "db")
    subprocess.run(
        [*as_user, str(initdb), "-D", db, "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    pg_ctl = [*as_user, str(initdb.with_name("pg_ctl")), "-D", db]
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*pg_ctl, "-o", opts, "-l", str(data / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """`user@host:port` of a PostgreSQL server with trust auth: $MODALOPS_TEST_PG, else this
    machine's server on 127.0.0.1:5432, else a private cluster (`private_postgres`)."""
    if os.environ.get("MODALOPS_TEST_PG"):
        yield os.environ["MODALOPS_TEST_PG"]
    elif _postgres_answers("postgres@127.0.0.1:5432"):
        yield "postgres@127.0.0.1:5432"
    else:
        with private_postgres() as dsn:
            yield dsn


MAX_TRANSIENT_SERVER_ERRORS = 3


def fail_on_server_service_errors(server: Service) -> None:
    """Fail the test run if the Prefect server's services logged an error while it ran: its
    scheduler failing every minute left every cron without runs and nothing else said so
    (issue 20)."""
    from modalops.services import read_server_errors

    errors = read_server_errors(server.log_path, server.log_offset)
    # A transient SQLite lock (a worker heartbeat that could not be written once while flows
    # ran on two loaded cores, seen 2026-12-07) is retried by the service on its next loop; a
    # few are tolerated. Any other error, or a lock that keeps coming back, fails the run.
    if any(not e.transient for e in errors) or len(errors) > MAX_TRANSIENT_SERVER_ERRORS:
        shown = "\n".join(f"  {e.line()}  [{e.message[:120]}]" for e in errors[:10])
        pytest.fail(
            f"the Prefect server's services logged {len(errors)} error(s) during the tests"
            f" (log {server.log_path}):\n{shown}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> Iterator[str]:
    """A standalone Prefect server subprocess (SQLite in a temp PREFECT_HOME); any error its
    services log while the tests use it fails the run at teardown."""
    server = start_prefect_server(tmp_path_factory.mktemp("prefect-home"))
    try:
        yield server.url
        # Ship buffered flow/task logs while the server is still up; otherwise Prefect's log
        # worker retries against a closed port at interpreter exit.
        from prefect.logging.handlers import APILogHandler

        APILogHandler().flush()
    finally:
        server.stop()
    fail_on_server_service_errors(server)


def wait_flow_run(api_url: str, flow_run_id: str, timeout_s: float, worker_log: Path):
    """Poll the Prefect API until the run is final; its FlowRun."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + timeout_s
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                return run
            if time.monotonic() > deadline:
                tail = worker_log.read_text(errors="replace")[-3000:]
                raise AssertionError(
                    f"flow run {flow_run_id} still {run.state_name} after {timeout_s:.0f} s;"
                    f" worker log ({worker_log}):\n{tail}"
                )
            time.sleep(3)
