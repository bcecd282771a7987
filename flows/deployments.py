"""The Prefect deployments the UI lists, in one place: training on a cron, batch inference and
feedback on demand, all on one process work pool served by the worker `modalops worker` starts.

    modalops deploy --config configs/demo.yaml       # register them, start a worker
    modalops worker status|stop

Each deployment's source is this repository's folder (Prefect's LocalStorage: its pull step is
`set_working_directory` to the repo), and the process worker starts each flow run with the
project's venv python in that folder, so relative store paths (`.modalops/store`) resolve as in
`make demo`. No image and no copy of the code: what runs is the checkout as it is on disk.
"""

from __future__ import annotations

import inspect
import shlex
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modalops.config import PipelineConfig
from modalops.config.forms import form_for
from modalops.services import DEFAULT_WORK_POOL

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class FlowDeployment:
    """One flow the UI can start: where it lives, what the deployment is called, and whether it
    runs on the schedule."""

    entrypoint: str  # "path/inside/the/repo.py:flow_function"
    description: str
    scheduled: bool = False
    what: str = ""  # the deployment's name before the config's: what it does

    @property
    def path(self) -> str:
        return self.entrypoint.split(":", 1)[0]

    def name(self, cfg: PipelineConfig) -> str:
        """`<what it does>-<config name>` (`train-nightly-modalops-demo`): the list says what
        each deployment does, and a second config deploys a second set beside the first."""
        return f"{self.what}-{cfg.name}" if self.what else cfg.name


# The one list. Training runs nightly on fresh recordings; inference and feedback run on demand.
DEPLOYMENTS: tuple[FlowDeployment, ...] = (
    FlowDeployment(
        "flows/training_pipeline.py:training_pipeline",
        "Train, evaluate and register the fused multimodal model (ingest → ... → register).",
        scheduled=True,
        what="train-nightly",
    ),
    FlowDeployment(
        "flows/batch_inference.py:batch_inference",
        "Score new recordings with the registered champion model; route the unsure windows to"
        " review.",
        what="batch-inference",
    ),
    FlowDeployment(
        "flows/feedback.py:feedback",
        "Bring reviewed predictions back as labels for the next training run.",
        what="feedback",
    ),
)


@dataclass(frozen=True)
class DeploySettings:
    """Where and when the deployments run (CLI options of `modalops deploy`)."""

    pool: str = DEFAULT_WORK_POOL
    cron: str | None = "0 3 * * *"  # None or "": no schedule, runs only from the UI or CLI
    timezone: str = "UTC"
    repo: Path = REPO
    python: Path = field(default_factory=lambda: Path(sys.executable))


@dataclass(frozen=True)
class Deployed:
    """A deployment registered on the server."""

    flow_name: str
    name: str
    id: str
    entrypoint: str
    url: str  # its page in the Prefect UI

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"


def ui_url(api_url: str) -> str:
    return api_url.rstrip("/").removesuffix("/api")


def job_variables(settings: DeploySettings) -> dict[str, Any]:
    """The process worker's settings for every run: the venv's python, in the repo folder."""
    return {
        "working_dir": str(settings.repo),
        "command": shlex.join([str(settings.python), "-m", "prefect.engine"]),
    }


def flow_parameters(fn: Callable[..., Any], cfg: PipelineConfig) -> dict[str, Any]:
    """Every parameter typed with a run form (modalops.config.forms) gets the loaded config's
    values for that flow, one typed `PipelineConfig` the whole config (the run form shows
    them); the others keep the flow's own defaults. A tracking URI with a password written out
    is refused: the stored parameters mask it, so the deployment's runs could not connect."""
    cfg.registry.check_deployable()
    hints = typing.get_type_hints(fn)
    params: dict[str, Any] = {}
    for name in inspect.signature(fn).parameters:
        annotation = hints.get(name)
        form = form_for(annotation)
        if form is not None:
            params[name] = form.form_data(cfg)
        elif annotation is PipelineConfig:
            params[name] = cfg.model_dump(mode="json")
    return params


def schedule_text(settings: DeploySettings) -> str:
    """The training schedule as people read it, with its timezone: `'0 3 * * *' (UTC)`."""
    return f"'{settings.cron}' ({settings.timezone})" if settings.cron else "on demand"


def ensure_process_pool(pool: str) -> None:
    """Create the process work pool if absent; refuse one of another type."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            existing = client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=pool,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                )
            )
            return
    if existing.type != "process":
        raise ValueError(
            f"work pool {pool!r} exists with type {existing.type!r}; modalops deploys to a"
            " 'process' pool: pass another --pool name"
        )


def deploy_flows(
    cfg: PipelineConfig,
    api_url: str,
    settings: DeploySettings | None = None,
    log: Callable[[str], None] = print,
    deployments: tuple[FlowDeployment, ...] = DEPLOYMENTS,
) -> list[Deployed]:
    """Register every deployment whose flow file exists and imports; log the ones skipped."""
    from prefect import Flow
    from prefect.schedules import Cron
    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings = settings or DeploySettings()
    done: list[Deployed] = []
    with temporary_settings({PREFECT_API_URL: api_url}):
        ensure_process_pool(settings.pool)
        for dep in deployments:
            if not (settings.repo / dep.path).is_file():
                log(f"not deployed: {dep.entrypoint} ({dep.path} does not exist yet)")
                continue
            try:
                flow = Flow.from_source(source=str(settings.repo), entrypoint=dep.entrypoint)
            except Exception as exc:  # a flow being written may not import yet; say so, go on
                log(f"not deployed: {dep.entrypoint} does not import: {type(exc).__name__}: {exc}")
                continue
            scheduled = dep.scheduled and bool(settings.cron)
            # the timezone is set on the schedule (the UI shows it there) and said in the
            # description too, which the deployments list shows
            schedules = [Cron(settings.cron, timezone=settings.timezone)] if scheduled else None
            when = f"Runs at {schedule_text(settings)}." if scheduled else "Runs on demand."
            deployment = flow.to_deployment(
                name=dep.name(cfg),
                description=f"{dep.description} {when} Config `{cfg.name}`.",
                schedules=schedules,
                parameters=flow_parameters(flow.fn, cfg),
                job_variables=job_variables(settings),
                work_pool_name=settings.pool,
                tags=["modalops", cfg.name],
            )
            deployment_id = str(deployment.apply(work_pool_name=settings.pool))
            done.append(
                Deployed(
                    flow_name=flow.name,
                    name=dep.name(cfg),
                    id=deployment_id,
                    entrypoint=dep.entrypoint,
                    url=f"{ui_url(api_url)}/deployments/deployment/{deployment_id}",
                )
            )
    return done
