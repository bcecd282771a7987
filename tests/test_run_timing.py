"""Stage wall times: task-run names grouped by task, shares of the flow's wall time."""

from flows.run_timing import StageTimes, task_name


def test_task_run_names_group_by_task():
    assert task_name("validate_samples-4xk") == "validate_samples"
    assert task_name("train_classifier-0a9") == "train_classifier"
    assert task_name("ingest_recordings") == "ingest_recordings"
    # a run named after its model still counts under its task (the key is function-hash)
    assert task_name("train fused", "train_classifier-1a2b3c4d") == "train_classifier"
    assert task_name("train baseline:audio", "train_classifier-1a2b3c4d") == "train_classifier"


def test_shares_and_table():
    times = StageTimes(
        200.0,
        {"validate_samples": 10.0, "train_classifier": 150.0},
        {"validate_samples": 1, "train_classifier": 5},
    )
    assert times.share("validate_samples") == 0.05
    assert times.share("missing") == 0.0
    table = times.table().splitlines()
    assert table[2] == "| train_classifier | 5 | 150.0 | 75.0% |"  # longest first
    assert table[3] == "| validate_samples | 1 | 10.0 | 5.0% |"
    assert table[-1] == "| (flow) | 1 | 200.0 | 100% |"
