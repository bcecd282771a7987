"""`modalops status` and the server-log reader behind it: service errors found in a real failing
log, and the server, worker, deployments with their next run, late and failed runs, read from a
real Prefect server."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from flows.deployments import DEPLOYMENTS, DeploySettings, deploy_flows
from modalops.config import PipelineConfig
from modalops.services import prefect_server_log, read_server_errors
from modalops.status import format_status, gather_status, when

# A real log of Prefect 3.8.8's server on SQLAlchemy 2.1.9 (issue 20): its scheduler service
# failed on every loop, so the cron of a deployment never made a run.
FAILING_LOG = Path(__file__).parent / "data" / "prefect-server-scheduler-failing.log"
# Prefect's scheduler loop for recently changed deployments runs every few seconds; 3 s measured
# from deploy to the first scheduled run, 60 s is the margin for a loaded 2-core machine.
SCHEDULER_WAIT_S = 60
BULK_DML = "Can't evaluate bulk DML statement; please supply a bulk_dml decorated function"


def test_the_scheduler_failures_are_read_from_a_real_log():
    errors = read_server_errors(FAILING_LOG)
    assert [e.time for e in errors] == ["16:47:38.887", "16:48:28.691"]
    assert {e.logger for e in errors} == {"docket.dependencies"}
    assert "schedule_deployments" in errors[1].message
    assert all(e.exception == f"sqlalchemy.exc.InvalidRequestError: {BULK_DML}" for e in errors)
    assert BULK_DML in errors[0].line()


def test_a_locked_sqlite_heartbeat_is_read_as_transient():
    """Seen in a full `make test` on two loaded cores (2026-12-07): the server could not write
    one worker heartbeat; the service writes the next. The scheduler's failures are not."""
    [err] = read_server_errors(
        Path(__file__).parent / "data" / "prefect-server-heartbeat-locked.log"
    )
    assert err.transient and err.logger == "prefect.server.utilities.worker_channel"
    assert err.exception == (
        "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked"
    )
    assert not any(e.transient for e in read_server_errors(FAILING_LOG))


def test_only_the_current_servers_part_of_the_log_counts(tmp_path):
    log = tmp_path / "server.log"
    shutil.copyfile(FAILING_LOG, log)
    offset = log.stat().st_size  # a restart appends from here
    with log.open("a") as fh:
        fh.write("17:00:00.000 | INFO    | prefect.server - started\n")
    assert read_server_errors(log, offset) == []
    with log.open("a") as fh:
        fh.write("17:00:01.000 | CRITICAL | prefect.server.services.foreman - gave up\n")
    [err] = read_server_errors(log, offset)
    assert (err.logger, err.message, err.exception) == (
        "prefect.server.services.foreman",
        "gave up",
        "",
    )


def test_a_missing_log_is_an_error_not_no_errors(tmp_path):
    import pytest

    with pytest.raises(OSError):
        read_server_errors(tmp_path / "absent.log")


def test_the_pid_file_records_where_the_servers_log_starts(tmp_path):
    (tmp_path / "server.pid").write_text("123 4200 5678\n")
    assert prefect_server_log(tmp_path) == (tmp_path / "server.log", 5678)
    (tmp_path / "server.pid").write_text("123 4200\n")  # written before the offset was kept
    assert prefect_server_log(tmp_path) == (tmp_path / "server.log", 0)


def test_times_read_as_a_person_reads_them():
    now = datetime(2026, 12, 7, 16, 52, tzinfo=UTC)
    assert when("2026-12-08T03:00:00Z", now) == "2026-12-08 03:00 UTC (in 10 h 8 min)"
    assert when("2026-12-07T16:40:00+00:00", now) == "2026-12-07 16:40 UTC (12 min ago)"
    assert when(None, now) == ""


def _failed_run(api: str, deployment_id: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Failed

    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment_id)
        client.set_flow_run_state(run.id, Failed(message="boom: the test failed this run"))
        return str(run.id)


def test_status_of_a_real_server(prefect_api, tmp_path):
    cfg = PipelineConfig(name="modalops-status-test")
    # a daily run at a minute that is always ahead, on a pool no worker serves
    at = datetime.now(UTC) + timedelta(hours=2)
    settings = DeploySettings(pool="modalops-status-pool", cron=f"{at.minute} {at.hour} * * *")
    [dep] = deploy_flows(cfg, prefect_api, settings, log=print, deployments=DEPLOYMENTS[:1])
    failed_id = _failed_run(prefect_api, dep.id)

    # the server's scheduler makes the runs of a new deployment within seconds (measured 3 s)
    deadline = time.monotonic() + SCHEDULER_WAIT_S
    while True:
        status = gather_status(prefect_api, "modalops-status-pool")
        [mine] = [d for d in status.deployments if d.id == dep.id]
        if mine.next_run is not None or time.monotonic() > deadline:
            break
        time.sleep(1)
    text = format_status(status)
    assert status.server_ok
    assert mine.full_name == "training_pipeline/train-nightly-modalops-status-test"
    assert mine.schedules == [f"cron '{at.minute} {at.hour} * * *' (UTC)"]
    assert mine.next_run is not None  # the server's scheduler made the run
    next_run = datetime.fromisoformat(mine.next_run)
    assert (next_run.hour, next_run.minute) == (at.hour, at.minute)
    assert f"next run {when(mine.next_run)}" in text
    # the failed run is listed with its deployment and message, and counted
    assert any(r.flow_run_id == failed_id for r in status.failed_runs)
    assert status.failed_count >= 1
    assert "boom: the test failed this run" in text
    assert "(training_pipeline/train-nightly-modalops-status-test)" in text
    # no worker serves the pool: a problem, named
    assert not status.worker_online
    assert any("no worker online for pool 'modalops-status-pool'" in p for p in status.problems)

    # the local server's log: the scheduler's errors become a problem naming the exception
    planted = tmp_path / "server.log"
    shutil.copyfile(FAILING_LOG, planted)
    with_errors = gather_status(prefect_api, "modalops-status-pool", server_log=(planted, 0))
    assert len(with_errors.service_errors) == 2
    assert any(BULK_DML in p and "2 error(s)" in p for p in with_errors.problems)
    assert "2 service error(s) since it started" in format_status(with_errors)


def test_status_reports_a_server_that_does_not_answer(tmp_path):
    from modalops.services import free_port

    status = gather_status(f"http://127.0.0.1:{free_port()}/api", "modalops-process")
    assert not status.server_ok
    assert any("does not answer /health" in p for p in status.problems)
    assert "NOT ANSWERING" in format_status(status)


def test_status_cli_starts_nothing_and_exits_1_without_a_server(tmp_path, monkeypatch):
    from modalops.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    out = CliRunner().invoke(app, ["status"])
    assert out.exit_code == 1, out.output
    assert "no Prefect server" in out.output
    assert not Path(".modalops").exists()


def test_status_cli_on_a_real_server(prefect_api, monkeypatch, tmp_path):
    from modalops.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    out = CliRunner().invoke(app, ["status", "--pool", "modalops-status-nopool"])
    assert f"Prefect server  {prefect_api}  healthy" in out.output, out.output
    assert "not on this machine" in out.output  # PREFECT_API_URL: the log is the server's
    assert "no work pool 'modalops-status-nopool' on the server" in out.output

    # an unscheduled deployment on a pool no worker serves: a problem, exit 1
    settings = DeploySettings(pool="modalops-status-cli", cron=None)
    cfg = PipelineConfig(name="modalops-status-cli")
    deploy_flows(cfg, prefect_api, settings, log=print, deployments=DEPLOYMENTS[:1])
    out = CliRunner().invoke(app, ["status", "--pool", "modalops-status-cli"])
    assert "training_pipeline/train-nightly-modalops-status-cli" in out.output, out.output
    assert "no worker online for pool 'modalops-status-cli'" in out.output
    assert out.exit_code == 1


def test_deployment_rows_keep_their_columns_whatever_the_name_length():
    """Names like `batch_inference/batch-inference-<config name>` run past 44 characters: the
    schedule column starts after the longest name, on every row."""
    from modalops.status import DeploymentStatus, PlatformStatus

    names = ["feedback/feedback-x", "batch_inference/batch-inference-a-rather-long-config-name"]
    status = PlatformStatus(
        api_url="http://127.0.0.1:1/api",
        server_ok=True,
        deployments=[
            DeploymentStatus(str(i), n, "p", [], False, None) for i, n in enumerate(names)
        ],
    )
    rows = [line for line in format_status(status).splitlines() if "on demand" in line]
    assert len(rows) == 2 and len({row.index("on demand") for row in rows}) == 1, rows
