"""Start and find the local services the platform runs against: a Prefect server, MLflow's UI
(`modalops ui`) and (in tests) an S3-compatible endpoint and an MLflow tracking server. Plain subprocesses, so nothing here
imports Prefect, MLflow or boto3."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ServiceError(RuntimeError):
    """A service did not start; the message names it and where its log is."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (local URL)
            return 200 <= resp.status < 300
    except OSError:
        return False


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if http_ok(url):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.3)
    return False


@dataclass
class Service:
    """A started subprocess service; `stop()` ends it (and its children)."""

    name: str
    url: str
    proc: subprocess.Popen | None
    log_path: Path
    log_offset: int = 0  # where this run's part of an appended log begins

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


LOOPBACK_IPS = frozenset({"127.0.0.1", "::1"})


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(ip, port) of every socket listening in process `pid` and its descendants."""
    import psutil

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    found: set[tuple[str, int]] = set()
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr:
                    found.add((conn.laddr.ip, conn.laddr.port))
    return found


def require_loopback(service: Service) -> Service:
    """The started `service`, once no socket of its process tree listens beyond loopback;
    otherwise it is stopped and the error names what it listened on. Every server the project
    starts passes through here: a flag or an environment variable that widens a bind (a
    PREFECT_SERVER_API_HOST exported in the shell, say) is caught on the live process."""
    assert service.proc is not None
    wide = sorted(
        (ip, port) for ip, port in listening_addresses(service.proc.pid) if ip not in LOOPBACK_IPS
    )
    if wide:
        service.stop()
        shown = ", ".join(f"{ip}:{port}" for ip, port in wide)
        raise ServiceError(
            f"{service.name} listened on {shown}, beyond loopback (127.0.0.1): stopped it. "
            f"Unset whatever widened its bind (see {service.log_path}); to serve a team, put an "
            "authenticating proxy in front (infra/README.md)"
        )
    return service


def _spawn(name: str, cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    # own process group, so stop() also ends the server's worker children
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def start_prefect_server(
    home: Path, port: int | None = None, timeout_s: float = 120.0, database_url: str | None = None
) -> Service:
    """A standalone `prefect server start` (SQLite under `home`, or `database_url`).

    A subprocess server rather than Prefect's in-process ephemeral one: the ephemeral server on
    SQLite logged `database is locked` under a 50-task flow on this kind of machine.
    """
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_UI_ENABLED="true",
    )
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    prefect_bin = str(Path(sys.executable).with_name("prefect"))
    log_path = home / "server.log"
    # the log is appended to across restarts: this server's part starts here
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    cmd = [prefect_bin, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = _spawn("prefect", cmd, env, log_path)
    api = f"http://127.0.0.1:{port}/api"
    if not wait_http(f"{api}/health", timeout_s, proc):
        Service("prefect", api, proc, log_path).stop()
        raise ServiceError(f"Prefect server did not become healthy on port {port}; see {log_path}")
    service = require_loopback(Service("prefect", api, proc, log_path, log_offset))
    (home / "server.pid").write_text(f"{proc.pid} {port} {log_offset}\n")
    return service


def recorded_prefect_api(home: Path) -> str | None:
    """The API URL the pid file of a server started with `home` records (answering or not)."""
    pid_file = Path(home) / "server.pid"
    if not pid_file.exists():
        return None
    try:
        _, port, *_ = pid_file.read_text().split()
    except ValueError:
        return None
    return f"http://127.0.0.1:{port}/api"


def find_prefect_server(home: Path) -> str | None:
    """The API URL of a server started earlier with `home`, if it still answers."""
    api = recorded_prefect_api(home)
    return api if api and http_ok(f"{api}/health") else None


def prefect_server_log(home: Path) -> tuple[Path, int]:
    """The log of the server started with `home` and the byte offset where its current run's
    part begins (0 when the pid file predates the offset or is gone)."""
    home = Path(home)
    fields = (home / "server.pid").read_text().split() if (home / "server.pid").exists() else []
    offset = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 0
    return home / "server.log", offset


SQLITE_LOCKED = "database is locked"
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")
# A Prefect server log line: `16:48:28.691 | ERROR   | docket.dependencies - message`.
_LOG_LINE = re.compile(r"^(\d\d:\d\d:\d\d(?:\.\d+)?) \| (\w+)\s*\| (\S+) - (.*)$")


@dataclass(frozen=True)
class ServerLogError:
    """An ERROR or CRITICAL record in a Prefect server's log, with its exception if it had one."""

    time: str  # time of day as the log writes it (the log has no date)
    logger: str
    message: str
    exception: str  # the traceback's last line, "" when none followed
    # SQLite lock contention ("database is locked"): the service tries again on its next loop,
    # so one such record is a hiccup under load; a service failing every loop repeats it
    transient: bool = False

    def line(self) -> str:
        what = self.exception or self.message
        return f"{self.time} {self.logger}: {what}"


def read_server_errors(log_path: Path, offset: int = 0) -> list[ServerLogError]:
    """Every ERROR/CRITICAL record of a Prefect server log from byte `offset` on.

    Prefect's server runs its services (the scheduler that turns a cron into runs, the late-run
    marker, ...) in the server process and only logs their failures, so this log is the one place
    where a schedule that makes no runs shows up (issue 20). A missing log reads as an error: it
    is never "no errors"."""
    with Path(log_path).open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", errors="replace")
    errors: list[ServerLogError] = []
    current: dict | None = None
    trace: list[str] = []

    def close() -> None:
        if current is not None:
            # the last exception line (`pkg.SomeError: text`), not what SQLAlchemy prints after
            # it ([SQL: ...], [parameters: ...], "(Background on this error at ...)")
            lines = [t.strip() for t in trace if _EXCEPTION_LINE.match(t)] or [
                t.strip() for t in trace if t.strip()
            ]
            transient = any(SQLITE_LOCKED in t for t in [current["message"], *trace])
            errors.append(
                ServerLogError(**current, exception=lines[-1] if lines else "", transient=transient)
            )

    for raw in text.splitlines():
        match = _LOG_LINE.match(raw)
        if match is None:
            if current is not None:
                trace.append(raw)
            continue
        close()
        current, trace = None, []
        time_of_day, level, logger, message = match.groups()
        if level.upper() in ("ERROR", "CRITICAL"):
            current = {"time": time_of_day, "logger": logger, "message": message.strip()}
    close()
    return errors


def stop_prefect_server(home: Path) -> bool:
    pid_file = Path(home) / "server.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    pid_file.unlink(missing_ok=True)
    return True


def start_s3_server(log_dir: Path, port: int | None = None, timeout_s: float = 60.0) -> Service:
    """moto's S3-compatible HTTP server on 127.0.0.1 (for tests and offline demos)."""
    port = port or free_port()
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    log_path = Path(log_dir) / "moto.log"
    proc = _spawn("moto", cmd, env, log_path)
    url = f"http://127.0.0.1:{port}"
    if not wait_http(f"{url}/moto-api/", timeout_s, proc):
        Service("moto", url, proc, log_path).stop()
        raise ServiceError(f"moto S3 server did not start on port {port}; see {log_path}")
    return require_loopback(Service("moto", url, proc, log_path))


def start_mlflow_server(
    backend_uri: str, log_dir: Path, port: int | None = None, timeout_s: float = 120.0
) -> Service:
    """`mlflow server --host 127.0.0.1 --port <port> --workers 1` over `backend_uri` (e.g. a
    SQLite file), its served artifacts and log under `log_dir`. Call again with the same
    `backend_uri` and `port` to bring a stopped server back where clients expect it."""
    port = port or free_port()
    log_dir = Path(log_dir).resolve()
    log_path = log_dir / "mlflow-server.log"
    cmd = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        # the backend store comes from the environment (MLFLOW_BACKEND_STORE_URI, which mlflow
        # server reads), not the command line: a database password there is in every `ps`
        # the default destination is ./mlartifacts under the current directory
        "--artifacts-destination",
        (log_dir / "mlartifacts").as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    proc = _spawn("mlflow", cmd, {**os.environ, "MLFLOW_BACKEND_STORE_URI": backend_uri}, log_path)
    url = f"http://127.0.0.1:{port}"
    if not wait_http(f"{url}/health", timeout_s, proc):
        Service("mlflow", url, proc, log_path).stop()
        raise ServiceError(f"MLflow server did not start on 127.0.0.1:{port}; see {log_path}")
    return require_loopback(Service("mlflow", url, proc, log_path))


@dataclass(frozen=True)
class MlflowUi:
    """An MLflow UI server started by `start_mlflow_ui`, as its pid file records it."""

    pid: int
    url: str
    log_path: Path


def _mlflow_ui_pid_file(home: Path) -> Path:
    return Path(home) / "ui.pid"


def start_mlflow_ui(
    home: Path, backend_uri: str, port: int = 5000, timeout_s: float = 120.0
) -> MlflowUi:
    """`mlflow server --host 127.0.0.1` over `backend_uri` for people to browse, in its own process
    group, outliving the caller: its pid file and log under `home` (as the Prefect server's).
    `port` if free, else a free one. Runs keep the artifact location their experiment records,
    so the UI reads their files where the pipeline wrote them."""
    home = Path(home).resolve()
    service = start_mlflow_server(
        backend_uri, home, free_port() if port_is_open(port) else port, timeout_s
    )
    assert service.proc is not None
    _mlflow_ui_pid_file(home).write_text(f"{service.proc.pid} {service.url}\n")
    return MlflowUi(service.proc.pid, service.url, service.log_path)


def find_mlflow_ui(home: Path) -> MlflowUi | None:
    """The MLflow UI started earlier with `home`, if its process lives and it answers."""
    pid_file = _mlflow_ui_pid_file(home)
    try:
        pid_text, url = pid_file.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if not (_pid_alive(pid) and http_ok(f"{url}/health")):
        return None
    return MlflowUi(pid, url, Path(home) / "mlflow-server.log")


def stop_mlflow_ui(home: Path, timeout_s: float = 15.0) -> bool:
    """Stop the MLflow UI started with `home` (its whole process group); False if none ran."""
    found = find_mlflow_ui(home)
    _mlflow_ui_pid_file(home).unlink(missing_ok=True)
    if found is None:
        return False
    port = int(found.url.rsplit(":", 1)[1])
    stop_group(found.pid, lambda: _pid_alive(found.pid) or port_is_open(port), timeout_s)
    return True


DEFAULT_WORK_POOL = "modalops-process"


def local_prefect_api(home: Path, port: int = 4200, on_start=None) -> str:
    """PREFECT_API_URL if set, else the server started earlier with `home`, else a new one
    (on `port`, or a free port if that one is taken); `on_start()` is called before starting."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    api = find_prefect_server(home)
    if api:
        return api
    if on_start is not None:
        on_start()
    return start_prefect_server(home, port=free_port() if port_is_open(port) else port).url


def _worker_pid_file(home: Path, pool: str) -> Path:
    return Path(home) / f"worker-{pool}.pid"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) is not a running worker
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"))


class PrefectApiError(OSError):
    """A call to the Prefect REST API failed; the message names the endpoint and the answer."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


def prefect_api_post(api_url: str, path: str, body: dict, timeout_s: float = 10.0) -> Any:
    """POST `body` as JSON to Prefect's REST API (`api_url + path`); the decoded answer.

    The standard library, not Prefect's client: status and planning read the API without
    importing Prefect (and the sync client sends `limit`/`sort` as null, which 3.8.8 refuses)."""
    req = urllib.request.Request(
        f"{api_url.rstrip('/')}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 (API URL)
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise PrefectApiError(f"POST {path} -> HTTP {exc.code}: {detail}", exc.code) from exc
    except (OSError, ValueError) as exc:
        raise PrefectApiError(f"POST {path} failed: {type(exc).__name__}: {exc}") from exc


def _worker_online(api_url: str, pool: str, name: str) -> bool:
    """Whether the server lists worker `name` in `pool` (Prefect's REST API, no client)."""
    try:
        workers = prefect_api_post(api_url, f"/work_pools/{pool}/workers/filter", {}, 3.0)
    except PrefectApiError:
        return False
    return any(w.get("name") == name for w in workers)


def start_prefect_worker(
    home: Path,
    api_url: str,
    pool: str = DEFAULT_WORK_POOL,
    timeout_s: float = 120.0,
    query_seconds: float = 5.0,
    env: dict[str, str] | None = None,
) -> Service:
    """A `prefect worker start --type process` on `pool` (created if absent), in its own process
    group, with a pid file and a log under `home`.

    The worker runs with this interpreter's `prefect`, so flow runs use the project's venv; it
    polls every `query_seconds` (Prefect's default, 10 s, makes a UI-triggered run sit
    "Scheduled" for a while). `env` is added to the worker's environment (flow runs inherit it).
    """
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    name = f"{pool}-worker-{os.getpid()}-{int(time.time())}"
    worker_env = dict(os.environ)
    worker_env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS=str(query_seconds),
        **(env or {}),
    )
    prefect_bin = str(Path(sys.executable).with_name("prefect"))
    log_path = home / f"worker-{pool}.log"
    cmd = [prefect_bin, "worker", "start", "--pool", pool, "--type", "process", "--name", name]
    proc = _spawn("prefect-worker", cmd, worker_env, log_path)
    service = require_loopback(Service("prefect-worker", api_url, proc, log_path))
    deadline = time.monotonic() + timeout_s
    while not _worker_online(api_url, pool, name):
        if proc.poll() is not None or time.monotonic() > deadline:
            service.stop()
            raise ServiceError(
                f"Prefect worker for pool {pool!r} did not come online at {api_url}; see {log_path}"
            )
        time.sleep(0.5)
    _worker_pid_file(home, pool).write_text(f"{proc.pid} {api_url} {name}\n")
    return service


@dataclass(frozen=True)
class WorkerInfo:
    """A worker started by `start_prefect_worker`, as its pid file records it."""

    pid: int
    api_url: str
    name: str
    log_path: Path


def find_prefect_worker(home: Path, pool: str = DEFAULT_WORK_POOL) -> WorkerInfo | None:
    """The worker started earlier with `home` for `pool`, if it still runs."""
    pid_file = _worker_pid_file(home, pool)
    if not pid_file.exists():
        return None
    try:
        pid_text, api_url, name = pid_file.read_text().split()
        pid = int(pid_text)
    except ValueError:
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    # a recycled pid belongs to some other program
    if cmdline.exists() and b"worker" not in cmdline.read_bytes():
        return None
    if not _pid_alive(pid):
        return None
    return WorkerInfo(pid, api_url, name, Path(home) / f"worker-{pool}.log")


def stop_prefect_worker(home: Path, pool: str = DEFAULT_WORK_POOL, timeout_s: float = 15.0) -> bool:
    """Stop the worker started with `home` for `pool` (its whole process group); False if none."""
    worker = find_prefect_worker(home, pool)
    _worker_pid_file(home, pool).unlink(missing_ok=True)
    if worker is None:
        return False
    stop_group(worker.pid, lambda: _pid_alive(worker.pid), timeout_s)
    return True


def stop_group(pid: int, running: Callable[[], bool], timeout_s: float) -> None:
    """SIGTERM the process group `pid` leads; SIGKILL it if `running()` still holds after
    `timeout_s` (a server's port still open, a worker still alive)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    if running():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
