"""Install, start, find and stop a local Label Studio (its own venv, 127.0.0.1 only).

Label Studio 1.23.2 pins Django, pydantic and friends that clash with ours, so it lives in a venv
of its own under `<home>/venv` (or `$MODALOPS_LABEL_STUDIO_VENV`, so tests on one machine share
one install). On first start a local admin is created non-interactively from
LABEL_STUDIO_USERNAME / LABEL_STUDIO_PASSWORD / LABEL_STUDIO_USER_TOKEN (read by
label_studio/server.py `_create_user`), with `--enable-legacy-api-token` so the organisation
accepts the fixed `Authorization: Token <token>` header (1.17+ default to JWT personal access
tokens only). The password and token are random, kept in `<home>/credentials.json` (mode 0600),
and never printed: `modalops review start` prints the URL, the email and that file's path.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from modalops.services import (
    Service,
    ServiceError,
    _spawn,
    port_is_open,
    require_loopback,
    stop_group,
    wait_http,
)

LABEL_STUDIO_VERSION = "1.23.2"
VENV_ENV = "MODALOPS_LABEL_STUDIO_VENV"
ADMIN_EMAIL = "admin@modalops.local"
# Inherited variables Label Studio's get_env() would read (it also checks the bare names, so a
# shell's USERNAME or PORT would silently become the admin's email or the port).
_LS_ENV_NAMES = ("USERNAME", "PASSWORD", "USER_TOKEN", "PORT", "HOST", "BASE_DATA_DIR")


def venv_dir(home: str | Path, venv: str | Path | None = None) -> Path:
    """`venv`, else $MODALOPS_LABEL_STUDIO_VENV, else `<home>/venv`."""
    chosen = venv or os.environ.get(VENV_ENV) or Path(home) / "venv"
    return Path(chosen).resolve()


def _stamp(venv: Path) -> Path:
    return venv / f".modalops-label-studio-{LABEL_STUDIO_VERSION}"


def ensure_installed(home: str | Path, venv: str | Path | None = None) -> Path:
    """The `label-studio` executable, installing label-studio==1.23.2 into its venv if needed.

    Idempotent (a stamp file per version); pip's output goes to `<home>/install.log`. A lock
    file keeps two processes (a test run and `modalops review start`) from installing at once.
    """
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    venv = venv_dir(home, venv)
    exe = venv / "bin" / "label-studio"
    if _stamp(venv).exists() and exe.exists():
        return exe
    venv.parent.mkdir(parents=True, exist_ok=True)
    log_path = home / "install.log"
    with (venv.parent / f".{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stamp(venv).exists() and exe.exists():  # another process finished meanwhile
            return exe
        env = dict(os.environ)
        env.pop("PIP_CONSTRAINT", None)  # our constraints are for our venv, not this one
        env.pop("VIRTUAL_ENV", None)
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--upgrade", "pip", "wheel"],
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                f"label-studio=={LABEL_STUDIO_VERSION}",
            ],
        ]
        with log_path.open("ab") as log:
            for cmd in steps:
                log.write(f"$ {' '.join(cmd)}\n".encode())
                log.flush()
                rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
                if rc != 0:
                    raise ServiceError(
                        f"installing label-studio=={LABEL_STUDIO_VERSION} into {venv} failed "
                        f"(exit {rc} from {cmd[2] if cmd[1] == '-m' else cmd[0]}); see {log_path}"
                    )
        if not exe.exists():
            raise ServiceError(f"{exe} is missing after the install; see {log_path}")
        _stamp(venv).write_text(f"label-studio=={LABEL_STUDIO_VERSION}\n")
    return exe


def credentials(home: str | Path) -> dict[str, str]:
    """The local admin's `email` (the web login's user), `password` and API `token`; created
    (random, mode 0600) if absent. A file written before the key was named `email` has it under
    `username` (Label Studio's name for the variable that carries it) and is read the same."""
    path = credentials_path(home)
    if path.exists():
        try:
            creds = json.loads(path.read_text())
        except json.JSONDecodeError:
            creds = {}
        if isinstance(creds, dict) and "email" not in creds and "username" in creds:
            creds = {"email": creds.pop("username"), **creds}
        if isinstance(creds, dict) and {"email", "password", "token"} <= set(creds):
            return creds
        raise ServiceError(f"{path}: expected JSON with email, password and token")
    path.parent.mkdir(parents=True, exist_ok=True)
    creds = {
        "email": ADMIN_EMAIL,
        "password": secrets.token_urlsafe(18),
        # DRF's Token.key is 40 characters; Label Studio ignores tokens of 5 or fewer
        "token": secrets.token_hex(20),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh, indent=2)
    return creds


def credentials_path(home: str | Path) -> Path:
    return Path(home).resolve() / "credentials.json"


def _label_studio_env(home: Path, port: int, creds: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LABEL_STUDIO_", "HEARTEX_")) and k not in _LS_ENV_NAMES
    }
    env.pop("VIRTUAL_ENV", None)
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(home / "data"),
        LABEL_STUDIO_USERNAME=creds["email"],  # Label Studio signs in by email
        LABEL_STUDIO_PASSWORD=creds["password"],
        LABEL_STUDIO_USER_TOKEN=creds["token"],
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        # nobody but the admin this creates signs up; nothing phones home
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        LABEL_STUDIO_COLLECT_ANALYTICS="false",
        LABEL_STUDIO_LATEST_VERSION_CHECK="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
    )
    return env


def start_label_studio(
    home: str | Path,
    port: int = 8089,
    timeout_s: float = 300.0,
    venv: str | Path | None = None,
) -> Service:
    """`label-studio start` on 127.0.0.1:`port`, data under `<home>/data`; waits for /health.

    Refuses a busy port: Label Studio itself would quietly move to the next free one.
    """
    home = Path(home).resolve()
    exe = ensure_installed(home, venv)
    if port_is_open(port):
        raise ServiceError(
            f"port {port} on 127.0.0.1 is already in use; stop what runs there or pick another "
            "(modalops review start --port N, or review.port in the config)"
        )
    creds = credentials(home)
    (home / "data").mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(exe),
        "start",
        "--no-browser",
        "--data-dir",
        str(home / "data"),
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--host",
        url,
        "--enable-legacy-api-token",
        "--log-level",
        "WARNING",
    ]
    log_path = home / "server.log"
    proc = _spawn("label-studio", cmd, _label_studio_env(home, port, creds), log_path)
    if not wait_http(f"{url}/health", timeout_s, proc):
        Service("label-studio", url, proc, log_path).stop()
        raise ServiceError(f"Label Studio did not become healthy on {url}; see {log_path}")
    service = require_loopback(Service("label-studio", url, proc, log_path))
    (home / "server.pid").write_text(f"{proc.pid} {port}\n")
    return service


def _pid_port(home: Path) -> tuple[int, int] | None:
    pid_file = home / "server.pid"
    if not pid_file.exists():
        return None
    try:
        pid, port = pid_file.read_text().split()
        return int(pid), int(port)
    except ValueError:
        return None


def find_label_studio(home: str | Path) -> tuple[str, str] | None:
    """(url, token) of a server started earlier with `home`, if it still answers."""
    home = Path(home).resolve()
    found = _pid_port(home)
    if found is None or not credentials_path(home).exists():
        return None
    url = f"http://127.0.0.1:{found[1]}"
    if not wait_http(f"{url}/health", 2.0):
        return None
    return url, credentials(home)["token"]


def stop_label_studio(home: str | Path, timeout_s: float = 20.0) -> bool:
    """End the server started with `home` (its whole process group); False if none was."""
    home = Path(home).resolve()
    found = _pid_port(home)
    if found is None:
        return False
    pid, port = found
    stop_group(pid, lambda: port_is_open(port), timeout_s)
    (home / "server.pid").unlink(missing_ok=True)
    return True
