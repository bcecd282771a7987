"""Stage wall times of a finished flow run, read back from the Prefect API (what the UI shows).

`modalops demo` prints them so the share of the pipeline spent in each stage (validation's,
issue 4) is measured by the orchestrator, not by timers in our own code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Prefect names task runs `<task name>-<3 random chars>`; repeated tasks (one per model) share a name
_RUN_SUFFIX = re.compile(r"-[0-9a-z]{3}$")


@dataclass(frozen=True)
class StageTimes:
    """Seconds per task name (summed over its runs) and the flow run's own wall time."""

    flow_seconds: float
    task_seconds: dict[str, float]
    task_runs: dict[str, int]

    def share(self, task: str) -> float:
        return self.task_seconds.get(task, 0.0) / self.flow_seconds if self.flow_seconds else 0.0

    def table(self) -> str:
        """Markdown: task, runs, seconds, share of the flow's wall time (longest first)."""
        lines = ["| task | runs | seconds | share of flow |", "|---|---|---|---|"]
        for name, seconds in sorted(self.task_seconds.items(), key=lambda kv: -kv[1]):
            lines.append(
                f"| {name} | {self.task_runs[name]} | {seconds:.1f} | {100 * self.share(name):.1f}% |"
            )
        lines.append(f"| (flow) | 1 | {self.flow_seconds:.1f} | 100% |")
        return "\n".join(lines)


def task_name(run_name: str, task_key: str | None = None) -> str:
    """The task a run belongs to: from its task key (`train_classifier-1a2b3c4d`, Prefect's
    function name and code hash), which a run named after its model (`train fused`) keeps;
    else from Prefect's default run name (`validate_samples-4xk` -> `validate_samples`)."""
    if task_key:
        return task_key.rsplit("-", 1)[0]
    return _RUN_SUFFIX.sub("", run_name)


def stage_times(flow_run_id: str) -> StageTimes:
    """Total run time of every task run of `flow_run_id`, grouped by task, from the Prefect API
    the current settings point at."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    run_filter = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(str(flow_run_id))]))
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(str(flow_run_id)))
        # prefect 3.8's sync client sends null sort/limit, which its server refuses (422)
        task_runs = client.read_task_runs(
            flow_run_filter=run_filter, sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200
        )
    seconds: dict[str, float] = {}
    runs: dict[str, int] = {}
    for tr in task_runs:
        name = task_name(tr.name, tr.task_key)
        seconds[name] = seconds.get(name, 0.0) + tr.total_run_time.total_seconds()
        runs[name] = runs.get(name, 0) + 1
    return StageTimes(flow_run.total_run_time.total_seconds(), seconds, runs)
