"""The batch-inference MLflow run: as long as the batch, named to fit the list, linked to the model.

Against MLflow on SQLite: the run a batch logs is read back the way MLflow's runs list shows it.
"""

from __future__ import annotations

import time

from mlflow import MlflowClient

from modalops.infer.champion import ModelRef
from modalops.infer.report import batch_run_name, batch_start_ms, log_batch_run


def test_batch_run_spans_the_batch_and_links_its_model(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("batch")
    model_id = client.create_logged_model(exp, name="model").model_id
    client.create_registered_model("m")
    client.create_model_version("m", source=str(tmp_path))
    served = ModelRef("m", "1", "", 0.5, model_id=model_id)
    wall_s = 6.0
    started = int(time.time() * 1000) - int(wall_s * 1000)  # the batch began 6 s ago
    summary = {"windows": 12, "routed": 3, "wall_seconds": wall_s, "started_at_ms": started}

    rid = log_batch_run(uri, "batch", served, summary, "# batch", {"modalops_run": "k"})

    run = client.get_run(rid)
    seconds = (run.info.end_time - run.info.start_time) / 1000
    # before issue 24 the run was created when the batch was logged: ~40 ms for a 6 s batch
    assert run.info.start_time == started and seconds >= wall_s, seconds
    assert run.info.run_name == batch_run_name("1", started) and len(run.info.run_name) <= 20
    assert run.info.run_name.startswith("batch v1 ")
    assert [m.model_id for m in run.inputs.model_inputs] == [model_id]
    assert run.data.metrics["inference.windows"] == 12
    assert client.get_model_version("m", "1").tags["last_batch_run"] == rid


def test_batch_start_without_a_recorded_start_uses_the_measured_wall_time():
    assert batch_start_ms({"wall_seconds": 2.5}, 10_000) == 7_500
    assert batch_start_ms({"started_at_ms": 9_000, "wall_seconds": 2.5}, 10_000) == 9_000
    assert batch_start_ms({}, 10_000) == 10_000  # nothing measured: a run of no length
