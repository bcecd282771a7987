"""README's "Using it", run as a user runs it: in a fresh working folder, through the installed
command line, with no PREFECT_API_URL (so `modalops run` starts its own local Prefect server
under `.modalops/prefect`, as on a fresh machine), then the services it left running are listed
and stopped the way the README says. tests/test_docs_commands.py names, for every command the
docs show, the test that runs it; this is the one for the lifecycle commands no other test runs
through the CLI (run, deploy, worker start/stop, server stop).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QUICK_PIPELINE, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]


def _cli(cwd: Path, module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"{proc.args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_the_readme_lifecycle_from_a_fresh_folder(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    # demo recordings, checked against their spec (README: modalops-demo data, dataset check)
    out = _ok(_cli(work, "modalops_demo.cli", "data", "--out", "raw", "--sessions", "6",
                   "--duration", "20"))  # fmt: skip
    assert "wrote 6 sessions" in out
    _ok(_cli(work, "modalops.cli", "dataset", "check", "raw"))

    sets = [
        arg
        for value in (
            "ingest.raw_uri=raw",
            "store.uri=store",
            "registry.tracking_uri=sqlite:///mlflow.db",
            *QUICK_PIPELINE,
        )
        for arg in ("--set", value)
    ]
    config = ["--config", str(REPO / "configs" / "ci.yaml")]
    try:
        # modalops run: a local Prefect server is started for it, the flow runs, the model is
        # registered; the summary comes back as JSON
        summary = json.loads(_ok(_cli(work, "modalops.cli", "run", *config, *sets, timeout=480)))
        assert summary["validation_passed"] is True and summary["model_version"] == "1"
        assert (work / ".modalops" / "prefect").is_dir()

        # modalops status: the server it started, answering
        status = _ok(_cli(work, "modalops.cli", "status"))
        assert "127.0.0.1" in status, status

        # modalops deploy: the deployments on the process pool and a worker serving them
        deployed = _ok(_cli(work, "modalops.cli", "deploy", *config, *sets))
        assert "training_pipeline" in deployed or "train" in deployed, deployed
        worker = _ok(_cli(work, "modalops.cli", "worker", "status"))
        assert "on pool 'modalops-process'" in worker, worker
        assert _ok(_cli(work, "modalops.cli", "worker", "stop")).strip() == "stopped"
        gone = _cli(work, "modalops.cli", "worker", "status")
        assert gone.returncode == 1 and "no worker running" in gone.stdout, gone.stdout
        # ... and back, as docs/ui.md's `modalops worker start`
        _ok(_cli(work, "modalops.cli", "worker", "start"))
        assert "on pool 'modalops-process'" in _ok(_cli(work, "modalops.cli", "worker", "status"))
    finally:
        _cli(work, "modalops.cli", "worker", "stop")
        stopped = _cli(work, "modalops.cli", "server", "stop")
    assert _ok(stopped).strip() == "stopped"
    again = _ok(_cli(work, "modalops.cli", "server", "stop"))
    assert again.strip() == "no local server was running"
