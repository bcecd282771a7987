"""What a flow run left on the Prefect server, read back for the tests: task run names and
artifacts (the flow run's own and its task runs')."""

from __future__ import annotations


def task_run_names(api_url: str, flow_run_id: str) -> list[str]:
    """The names of a flow run's task runs, from the Prefect API."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    only = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=only, sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200
        )
    return [r.name for r in runs]


def run_artifacts(api_url: str, flow_run_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """A flow run's markdown artifacts by key: (the flow run's own, its task runs'). Over the
    REST API: prefect 3.8's sync client sends null sort/offset/filters, which its server refuses."""
    import httpx

    body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200, "offset": 0,
            "sort": "KEY_ASC"}  # fmt: skip
    response = httpx.post(f"{api_url}/artifacts/filter", json=body, timeout=30)
    response.raise_for_status()
    artifacts = response.json()
    flow_level = {a["key"]: str(a["data"]) for a in artifacts if a["task_run_id"] is None}
    task_level = {a["key"]: str(a["data"]) for a in artifacts if a["task_run_id"] is not None}
    return flow_level, task_level


def long_figures(text: str, most: int = 6) -> list[str]:
    """Decimal numbers in `text` with more than `most` significant digits (`12.118220730649366`,
    issue 24): what an artifact shows unrounded."""
    import re

    found = []
    for number in re.findall(r"\d+\.\d+", text):
        digits = number.replace(".", "").lstrip("0")
        if len(digits) > most:
            found.append(number)
    return found
