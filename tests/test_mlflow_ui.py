"""`modalops ui`: MLflow's UI on loopback over the config's store, and the pages it points to.

The command runs as a person runs it (a subprocess in a fresh working directory), against a
SQLite store holding one pipeline run; its URLs are fetched over HTTP, its sockets are read from
the live process tree, and `--stop` must close the port.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from modalops.register.tracking import end_pipeline_run, start_pipeline_run
from modalops.services import LOOPBACK_IPS, free_port, listening_addresses, port_is_open
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _modalops(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_API_URL": "http://127.0.0.1:4999/api"}
    return subprocess.run(
        [sys.executable, "-m", "modalops.cli", "ui", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (loopback)
        return resp.status, resp.read()


def test_ui_starts_on_loopback_prints_the_runs_view_and_stops(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ctx = start_pipeline_run(uri, "ui-test", run_name="train 12-07 03:00", tags={}, config={})
    end_pipeline_run(ctx)
    port = free_port()
    sets = ["--set", f"registry.tracking_uri={uri}", "--set", "registry.experiment=ui-test"]
    started = _modalops(tmp_path, *sets, "--port", str(port), "--background")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        out = started.stdout
        base = f"http://127.0.0.1:{port}"
        runs_view = f"{base}/#/experiments/{ctx.experiment_id}/runs"
        assert f"MLflow   {base}" in out and runs_view in out, out
        assert f"{base}/#/models/modalops-fused" in out
        assert "Prefect  http://127.0.0.1:4999" in out  # from PREFECT_API_URL
        pid = int((tmp_path / ".modalops" / "mlflow" / "ui.pid").read_text().split()[0])
        assert {ip for ip, _ in listening_addresses(pid)} <= LOOPBACK_IPS
        assert (("127.0.0.1", port)) in listening_addresses(pid)
        # the store URI (a database password, on a team store) is not on any command line
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                assert uri.encode() not in (proc / "cmdline").read_bytes(), proc

        # the page the printed URLs open (the part after # is the browser's) and the experiment
        # behind them: opened on its runs (classic view), not MLflow 3's GenAI pages
        status, page = _get(base + "/")
        assert status == 200 and b"<html" in page.lower()
        status, body = _get(f"{base}/ajax-api/2.0/mlflow/experiments/get?experiment_id="
                            f"{ctx.experiment_id}")  # fmt: skip
        tags = {t["key"]: t["value"] for t in json.loads(body)["experiment"].get("tags", [])}
        assert status == 200 and tags["mlflow.experimentKind"] == "custom_model_development"
        status, body = _get(f"{base}/ajax-api/2.0/mlflow/runs/get?run_id={ctx.parent_run_id}")
        assert status == 200 and json.loads(body)["run"]["info"]["run_name"] == "train 12-07 03:00"

        again = _modalops(tmp_path, *sets, "--port", str(port), "--background")
        assert again.returncode == 0 and "already running" in again.stdout, again.stdout
        assert runs_view in again.stdout
    finally:
        stopped = _modalops(tmp_path, "--stop")
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped", stopped.stdout
    assert not port_is_open(port)
    assert _modalops(tmp_path, "--stop").stdout.strip() == "no MLflow UI was running"


def test_ui_links_wait_for_a_first_run(tmp_path):
    """No experiment yet: the experiments list instead of a runs view that does not exist."""
    from modalops.ui import ui_links

    links = ui_links(
        "http://127.0.0.1:5000", f"sqlite:///{tmp_path / 'm.db'}", "none-yet", "m", tmp_path
    )
    assert links.runs is None
    assert "#/experiments  (experiment 'none-yet' appears after a first run)" in "\n".join(
        links.lines("none-yet", "m")
    )
