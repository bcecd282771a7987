"""Review task: the windows verification routed go to Label Studio, or to its import JSON."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from modalops.config.pipeline import PipelineConfig
from modalops.dataset.spec import DatasetSpec
from modalops.infer import BatchResult
from modalops.review.client import ReviewClient, resolve_review_target
from modalops.review.tasks import build_tasks, write_import_json
from modalops.runs import RunContext


@task(retries=2, retry_delay_seconds=[5, 15])
def send_to_review(
    run: RunContext, spec: DatasetSpec, cfg: PipelineConfig, result: BatchResult
) -> dict[str, Any]:
    """Import the routed windows, with the model's predictions, into the model's project.

    With no Label Studio configured or running, the same tasks are written as a Label Studio
    import file in the run's folder of the store (review/import.json).
    """
    log = get_run_logger()
    tasks = build_tasks(spec, result.review_items) if len(result.review_items) else []
    key = run.key("review", "import.json")
    write_import_json(run.store(), key, tasks)  # kept either way: what was sent, per run
    target = resolve_review_target(cfg.review)
    if target is None:
        log.info("no Label Studio configured or running: %d tasks written to %s",
                 len(tasks), run.store().uri(key))  # fmt: skip
        return {"tasks": len(tasks), "imported": 0, "import_json": key, "project_id": None}
    url, token = target
    client = ReviewClient(url, token, cfg.review.project_prefix)
    project = client.ensure_project(spec, result.model.name)
    imported = client.import_tasks(project, tasks) if tasks else 0
    log.info("Label Studio %s project %s: %d of %d tasks new", url, project, imported, len(tasks))
    return {
        "tasks": len(tasks),
        "imported": imported,
        "import_json": key,
        "project_id": project,
        "url": f"{url.rstrip('/')}/projects/{project}",
    }
