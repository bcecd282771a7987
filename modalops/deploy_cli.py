"""`modalops deploy` and `modalops worker`: the deployments the Prefect UI starts runs from, and
the process worker that runs them (docs/ui.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modalops.services import DEFAULT_WORK_POOL

# The same home as `modalops server` (modalops.cli.PREFECT_HOME): worker pid file and log go there.
PREFECT_HOME = Path(".modalops") / "prefect"

worker_app = typer.Typer(no_args_is_help=True, help="The Prefect worker that runs deployments.")

PoolOpt = Annotated[str, typer.Option("--pool", help="Process work pool (created if absent).")]


def prefect_api() -> str:
    """PREFECT_API_URL if set, else the local server under .modalops/prefect (started if needed)."""
    from modalops.services import local_prefect_api

    return local_prefect_api(
        PREFECT_HOME,
        on_start=lambda: typer.echo(
            "starting a local Prefect server (first run takes ~15 s) ...", err=True
        ),
    )


def ensure_worker(api_url: str, pool: str = DEFAULT_WORK_POOL) -> str:
    """Start a worker for `pool` against `api_url` unless one runs; a line saying which."""
    from modalops.services import find_prefect_worker, start_prefect_worker, stop_prefect_worker

    worker = find_prefect_worker(PREFECT_HOME, pool)
    if worker is not None and worker.api_url == api_url:
        return f"worker {worker.name} (pid {worker.pid}) already serves pool {pool!r}"
    if worker is not None:  # it polls a server that is gone or another one
        stop_prefect_worker(PREFECT_HOME, pool)
    started = start_prefect_worker(PREFECT_HOME, api_url, pool)
    return f"started a worker on pool {pool!r} (pid {started.proc.pid}, log {started.log_path})"


def deploy_and_serve(
    cfg,
    api_url: str,
    pool: str = DEFAULT_WORK_POOL,
    cron: str | None = "0 3 * * *",
    timezone: str = "UTC",
    start_worker: bool = True,
) -> list:
    """Register the deployments (flows/deployments.py) with `cfg` as their parameters, make sure
    a worker serves the pool, print the UI URL and each deployment. `make demo` calls this."""
    from flows.deployments import DeploySettings, deploy_flows, schedule_text, ui_url

    settings = DeploySettings(pool=pool, cron=cron or None, timezone=timezone)
    try:
        deployed = deploy_flows(cfg, api_url, settings, log=typer.echo)
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    if start_worker:
        typer.echo(ensure_worker(api_url, pool))
    typer.echo(f"Prefect UI   {ui_url(api_url)}/deployments")
    for dep in deployed:
        typer.echo(f"  {dep.full_name:<40} {dep.url}")
    if settings.cron:
        typer.echo(f"  schedule: training at {schedule_text(settings)}")
        _say_next_runs(api_url, deployed)
    return deployed


def _say_next_runs(api_url: str, deployed: list) -> None:
    """Print when each scheduled deployment runs next, read back from the server: a schedule the
    server's scheduler makes no run from is said here, not found a day later (issue 20)."""
    from flows.deployments import DEPLOYMENTS
    from modalops.status import wait_next_run, when

    scheduled = {d.entrypoint for d in DEPLOYMENTS if d.scheduled}
    for dep in deployed:
        if dep.entrypoint not in scheduled:
            continue
        nxt = wait_next_run(api_url, dep.id)
        if nxt is None:
            typer.secho(
                f"  {dep.full_name}: the server made no run from its schedule in 30 s;"
                " `modalops status` shows the server's service errors",
                fg="red",
                err=True,
            )
        else:
            typer.echo(f"  next run of {dep.full_name}: {when(nxt)}")


def deploy(
    config: Annotated[
        list[Path] | None,
        typer.Option("--config", "-c", help="YAML config (a diff of the defaults)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override, e.g. --set train.max_epochs=3."),
    ] = None,
    pool: PoolOpt = DEFAULT_WORK_POOL,
    cron: Annotated[str, typer.Option(help="Training schedule (cron, '' for none).")] = "0 3 * * *",
    timezone: Annotated[str, typer.Option(help="Timezone of the schedule.")] = "UTC",
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Start a worker if none runs.")
    ] = True,
) -> None:
    """Register the deployments (scheduled training, batch inference, feedback); start a worker.

    The config becomes the deployments' parameters: the UI's run form shows its values."""
    from modalops.config import ConfigError, load_config

    try:
        cfg = load_config(config or [], set_ or [])
    except ConfigError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    deploy_and_serve(cfg, prefect_api(), pool, cron, timezone, start_worker=worker)


@worker_app.command("start")
def worker_start(pool: PoolOpt = DEFAULT_WORK_POOL) -> None:
    """Start (or find) the worker for the pool, against PREFECT_API_URL or the local server."""
    typer.echo(ensure_worker(prefect_api(), pool))


@worker_app.command("stop")
def worker_stop(pool: PoolOpt = DEFAULT_WORK_POOL) -> None:
    """Stop the worker modalops started for the pool."""
    from modalops.services import stop_prefect_worker

    stopped = stop_prefect_worker(PREFECT_HOME, pool)
    typer.echo("stopped" if stopped else f"no worker was running for pool {pool!r}")


@worker_app.command("status")
def worker_status(pool: PoolOpt = DEFAULT_WORK_POOL) -> None:
    """Say whether a worker runs for the pool (exit 1 if none)."""
    from modalops.services import find_prefect_worker

    worker = find_prefect_worker(PREFECT_HOME, pool)
    if worker is None:
        typer.echo(f"no worker running for pool {pool!r}")
        raise typer.Exit(1)
    typer.echo(
        f"worker {worker.name} (pid {worker.pid}) on pool {pool!r} -> {worker.api_url};"
        f" log {worker.log_path}"
    )


def status(pool: PoolOpt = DEFAULT_WORK_POOL) -> None:
    """The Prefect server, its services' errors, the worker, each deployment with its next
    scheduled run, and late or failed runs; exit 1 if anything needs attention. Starts nothing."""
    import os

    from modalops.services import find_prefect_worker, prefect_server_log, recorded_prefect_api
    from modalops.status import format_status, gather_status

    remote = os.environ.get("PREFECT_API_URL")
    # a local server that stopped answering is still reported, with its log's errors
    api_url = remote or recorded_prefect_api(PREFECT_HOME)
    worker = find_prefect_worker(PREFECT_HOME, pool)
    report = gather_status(
        api_url,
        pool,
        server_log=None if remote or api_url is None else prefect_server_log(PREFECT_HOME),
        worker_name=worker.name if worker else None,
    )
    typer.echo(format_status(report))
    if report.problems:
        raise typer.Exit(1)
