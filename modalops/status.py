"""What `modalops status` reports: the Prefect server, its services' errors, the worker, each
deployment with its next scheduled run, and runs that are late or failed.

Read over Prefect's REST API with the standard library (as `services._worker_online` does), so
it imports no Prefect and starts nothing. Every read that fails is reported as a problem with
what could not be read: a failed read is never "nothing there".
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modalops.services import (
    PrefectApiError,
    ServerLogError,
    http_ok,
    prefect_api_post,
    read_server_errors,
)

# How many failed runs and service errors the report lists (the counts are always full).
SHOWN = 5


@dataclass(frozen=True)
class RunLine:
    """One flow run as the report lists it."""

    name: str
    flow_run_id: str
    deployment: str  # flow/deployment, "" for a run started without one
    state: str
    when: str  # expected start (scheduled/late) or start time, ISO
    message: str = ""

    def line(self) -> str:
        where = f" ({self.deployment})" if self.deployment else ""
        msg = f": {self.message[:160]}" if self.message else ""
        return f"{self.state:<9} {when(self.when)}  {self.name}{where}{msg}"


@dataclass(frozen=True)
class DeploymentStatus:
    """A deployment, its schedule and the next run the scheduler made from it."""

    id: str
    full_name: str  # flow/deployment
    pool: str
    schedules: list[str]  # "cron '0 3 * * *' (UTC)", one per active schedule
    paused: bool
    next_run: str | None  # expected start of the earliest scheduled run, ISO; None if none

    @property
    def scheduled(self) -> bool:
        return bool(self.schedules) and not self.paused


@dataclass
class PlatformStatus:
    """Everything `modalops status` prints; `problems` decides its exit code."""

    api_url: str | None
    server_ok: bool = False
    server_log: Path | None = None
    service_errors: list[ServerLogError] = field(default_factory=list)
    worker: str = ""
    worker_online: bool = False
    deployments: list[DeploymentStatus] = field(default_factory=list)
    late_runs: list[RunLine] = field(default_factory=list)
    failed_runs: list[RunLine] = field(default_factory=list)
    failed_count: int = 0
    problems: list[str] = field(default_factory=list)


def describe_schedule(entry: dict[str, Any]) -> str:
    """A deployment schedule as a person reads it (cron, interval or rrule, with its zone)."""
    sched = entry.get("schedule") or {}
    zone = sched.get("timezone") or "UTC"
    if sched.get("cron"):
        return f"cron '{sched['cron']}' ({zone})"
    if sched.get("interval") is not None:
        return f"every {sched['interval']} s"
    if sched.get("rrule"):
        return f"rrule {sched['rrule']}"
    return "schedule " + json.dumps(sched)[:80]


def _runs(api_url: str, flow_runs: dict[str, Any], sort: str, limit: int, **extra: Any) -> list:
    body = {"flow_runs": flow_runs, "sort": sort, "limit": limit, "offset": 0, **extra}
    return prefect_api_post(api_url, "/flow_runs/filter", body)


def _run_line(run: dict[str, Any], names: dict[str, str]) -> RunLine:
    state = run.get("state") or {}
    when = run.get("start_time") or run.get("expected_start_time") or ""
    return RunLine(
        name=run.get("name", ""),
        flow_run_id=str(run.get("id", "")),
        deployment=names.get(str(run.get("deployment_id")), ""),
        state=run.get("state_name") or state.get("name") or "",
        when=when,
        message=next(iter((state.get("message") or "").strip().splitlines()), ""),
    )


def read_deployments(api_url: str) -> list[DeploymentStatus]:
    """Every deployment on the server with its active schedules and next scheduled run."""
    deps = prefect_api_post(api_url, "/deployments/filter", {"limit": 200, "offset": 0})
    flow_ids = sorted({d["flow_id"] for d in deps})
    flows = (
        prefect_api_post(
            api_url, "/flows/filter", {"flows": {"id": {"any_": flow_ids}}, "limit": 200}
        )
        if flow_ids
        else []
    )
    flow_names = {f["id"]: f["name"] for f in flows}
    out = []
    for dep in deps:
        out.append(
            DeploymentStatus(
                id=str(dep["id"]),
                full_name=f"{flow_names.get(dep['flow_id'], '?')}/{dep['name']}",
                pool=dep.get("work_pool_name") or "",
                schedules=[describe_schedule(s) for s in dep.get("schedules", []) if s["active"]],
                paused=bool(dep.get("paused")),
                next_run=next_scheduled_run(api_url, str(dep["id"])),
            )
        )
    return sorted(out, key=lambda d: d.full_name)


def next_scheduled_run(api_url: str, deployment_id: str) -> str | None:
    """Expected start (ISO) of the deployment's earliest scheduled run; None if it has none."""
    runs = _runs(
        api_url,
        {"state": {"type": {"any_": ["SCHEDULED"]}}},
        "EXPECTED_START_TIME_ASC",
        1,
        deployments={"id": {"any_": [deployment_id]}},
    )
    return runs[0]["expected_start_time"] if runs else None


def wait_next_run(api_url: str, deployment_id: str, timeout_s: float = 30.0) -> str | None:
    """`next_scheduled_run`, waiting up to `timeout_s` for the server's scheduler (a new
    deployment's runs appeared after 2-3 s when measured)."""
    deadline = time.monotonic() + timeout_s
    while (found := next_scheduled_run(api_url, deployment_id)) is None:
        if time.monotonic() > deadline:
            return None
        time.sleep(1)
    return found


def read_worker(api_url: str, pool: str, expected_name: str | None) -> tuple[bool, str]:
    """Whether a worker of `pool` is online on the server, and a line saying which."""
    try:
        workers = prefect_api_post(api_url, f"/work_pools/{pool}/workers/filter", {})
    except PrefectApiError as exc:
        if exc.http_status != 404:
            raise
        return False, f"no work pool {pool!r} on the server (`modalops deploy` creates it)"
    online = [w for w in workers if w.get("status") == "ONLINE"]
    if expected_name:
        online = [w for w in online if w.get("name") == expected_name] or online
    if not online:
        seen = ", ".join(f"{w.get('name')} {w.get('status')}" for w in workers) or "none"
        return False, f"no worker online for pool {pool!r} (workers the server knows: {seen})"
    w = online[0]
    return (
        True,
        f"{w['name']} online on pool {pool!r}, last heartbeat {w.get('last_heartbeat_time')}",
    )


def gather_status(
    api_url: str | None,
    pool: str,
    server_log: tuple[Path, int] | None = None,
    worker_name: str | None = None,
) -> PlatformStatus:
    """Read everything the report shows; each failed read becomes a problem, not an empty list.

    `server_log` is the local server's log and the offset its current run starts at (None when
    the server is elsewhere: its services' errors are then not visible from here)."""
    status = PlatformStatus(api_url=api_url)
    if api_url is None:
        status.problems.append("no Prefect server: PREFECT_API_URL is unset and none was started")
        return status
    status.server_ok = http_ok(f"{api_url.rstrip('/')}/health")
    if not status.server_ok:
        status.problems.append(f"the Prefect server at {api_url} does not answer /health")
    if server_log is not None:
        status.server_log = server_log[0]
        try:
            status.service_errors = read_server_errors(*server_log)
        except OSError as exc:
            status.problems.append(f"cannot read the server log {server_log[0]}: {exc}")
        if status.service_errors:
            status.problems.append(
                f"{len(status.service_errors)} error(s) from Prefect server services since it"
                f" started, last: {status.service_errors[-1].line()}"
            )
    if not status.server_ok:
        return status
    _read_api(status, api_url, pool, worker_name)
    return status


def _read_api(status: PlatformStatus, api_url: str, pool: str, worker_name: str | None) -> None:
    try:
        status.worker_online, status.worker = read_worker(api_url, pool, worker_name)
    except PrefectApiError as exc:
        status.problems.append(f"cannot read the workers of pool {pool!r}: {exc}")
    try:
        status.deployments = read_deployments(api_url)
    except PrefectApiError as exc:
        status.problems.append(f"cannot read the deployments: {exc}")
    for dep in status.deployments:
        if dep.scheduled and dep.next_run is None:
            status.problems.append(
                f"{dep.full_name} has an active schedule but no scheduled run: the server's"
                " scheduler made none (see its service errors)"
            )
    if status.deployments and not status.worker_online and status.worker:
        status.problems.append(status.worker)
    dep_names = {d.id: d.full_name for d in status.deployments}
    try:
        late = _runs(
            api_url, {"state": {"name": {"any_": ["Late"]}}}, "EXPECTED_START_TIME_ASC", 50
        )
        failed = _runs(
            api_url, {"state": {"type": {"any_": ["FAILED", "CRASHED"]}}}, "START_TIME_DESC", 200
        )
    except PrefectApiError as exc:
        status.problems.append(f"cannot read the flow runs: {exc}")
        return
    status.late_runs = [_run_line(r, dep_names) for r in late]
    status.failed_runs = [_run_line(r, dep_names) for r in failed[:SHOWN]]
    status.failed_count = len(failed)
    if status.late_runs:
        status.problems.append(
            f"{len(status.late_runs)} run(s) late (scheduled, not picked up): is a worker"
            f" serving their pool? first: {status.late_runs[0].line()}"
        )


def when(iso: str | None, now: datetime | None = None) -> str:
    """An API timestamp as `2026-12-08 03:00 UTC (in 10 h 8 min)` or `(12 min ago)`."""
    if not iso:
        return ""
    try:
        t = datetime.fromisoformat(iso).astimezone(UTC)
    except ValueError:
        return iso
    minutes = round(((now or datetime.now(UTC)) - t).total_seconds() / 60)
    span = (
        f"{abs(minutes) // 60} h {abs(minutes) % 60} min"
        if abs(minutes) >= 60
        else f"{abs(minutes)} min"
    )
    rel = "now" if minutes == 0 else (f"{span} ago" if minutes > 0 else f"in {span}")
    return f"{t:%Y-%m-%d %H:%M} UTC ({rel})"


def format_status(status: PlatformStatus) -> str:
    """The report as `modalops status` prints it."""
    lines = []
    health = "healthy" if status.server_ok else "NOT ANSWERING"
    lines.append(f"Prefect server  {status.api_url or '(none)'}  {health}")
    if status.server_log is not None:
        n = len(status.service_errors)
        lines.append(f"  server log    {status.server_log}: {n} service error(s) since it started")
        for err in status.service_errors[-SHOWN:]:
            lines.append(f"    {err.line()}")
    elif status.api_url:
        lines.append("  server log    not on this machine: service errors are in the server's log")
    lines.append(f"worker          {status.worker or '(not read)'}")
    lines.append("deployments")
    # names as wide as the longest (`batch_inference/batch-inference-<config name>` is 45+)
    width = max((len(dep.full_name) for dep in status.deployments), default=0)
    for dep in status.deployments:
        sched = ", ".join(dep.schedules) if dep.schedules else "on demand"
        if dep.paused:
            sched += " (paused)"
        nxt = (
            f"next run {when(dep.next_run)}"
            if dep.next_run
            else ("no run scheduled" if dep.scheduled else "")
        )
        lines.append(f"  {dep.full_name:<{width}} {sched:<28} {nxt}".rstrip())
    if not status.deployments:
        lines.append("  (none read)" if status.problems else "  none")
    lines.append(
        f"failed runs     {status.failed_count}" + (" (latest first)" if status.failed_runs else "")
    )
    lines.extend(f"  {r.line()}" for r in status.failed_runs)
    if status.late_runs:
        lines.append(f"late runs       {len(status.late_runs)}")
        lines.extend(f"  {r.line()}" for r in status.late_runs[:SHOWN])
    lines.append("problems" if status.problems else "problems        none")
    lines.extend(f"  - {p}" for p in status.problems)
    return "\n".join(lines)
