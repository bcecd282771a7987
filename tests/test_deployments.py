"""The deployments (flows/deployments.py) and the worker (modalops.services), against a real
Prefect server: pool, schedule, entrypoint, working directory, parameters; start/find/stop."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.deployments import (
    DEPLOYMENTS,
    DeploySettings,
    FlowDeployment,
    deploy_flows,
    flow_parameters,
    job_variables,
)
from modalops.config import PipelineConfig, load_config
from modalops.services import find_prefect_worker, start_prefect_worker, stop_prefect_worker
from tests.conftest import REPO

TRAINING = "flows/training_pipeline.py:training_pipeline"


def _read_deployment(api: str, deployment_id: str):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        return client.read_deployment(deployment_id)


def test_the_list_names_the_three_flows_and_only_training_is_scheduled():
    assert [d.entrypoint for d in DEPLOYMENTS] == [
        TRAINING,
        "flows/batch_inference.py:batch_inference",
        "flows/feedback.py:feedback",
    ]
    assert [d.scheduled for d in DEPLOYMENTS] == [True, False, False]


def test_runs_use_the_venv_python_in_the_repo_folder():
    jv = job_variables(DeploySettings())
    assert jv["working_dir"] == str(REPO)
    assert jv["command"].split()[0] == sys.executable
    assert jv["command"].endswith("-m prefect.engine")


def test_only_pipeline_config_parameters_get_the_config():
    cfg = PipelineConfig(name="x")

    def flow_fn(cfg: PipelineConfig, limit: int = 3) -> None: ...

    assert flow_parameters(flow_fn, cfg) == {"cfg": cfg.model_dump(mode="json")}
    assert flow_parameters(lambda limit=3: None, cfg) == {}


def test_a_form_parameter_gets_the_config_values_its_flow_reads():
    from flows.batch_inference import batch_inference
    from flows.training_pipeline import training_pipeline
    from modalops.config.forms import BatchInferenceForm, TrainingForm

    cfg = load_config([REPO / "configs" / "ci.yaml"], ["train.max_epochs=4"])
    params = flow_parameters(training_pipeline.fn, cfg)
    assert params == {"cfg": TrainingForm.form_data(cfg)}
    assert params["cfg"]["max_epochs"] == 4
    assert "inference" not in params["cfg"] and "review" not in params["cfg"]
    batch = flow_parameters(batch_inference.fn, cfg)
    assert batch == {"cfg": BatchInferenceForm.form_data(cfg)}
    assert "train" not in batch["cfg"]
    # the stored values are what the flow runs with
    assert training_pipeline.validate_parameters(params)["cfg"].pipeline_config().train == cfg.train


def test_deployment_names_say_what_each_does_per_config():
    cfg = PipelineConfig(name="modalops-demo")
    assert [d.name(cfg) for d in DEPLOYMENTS] == [
        "train-nightly-modalops-demo",
        "batch-inference-modalops-demo",
        "feedback-modalops-demo",
    ]


def test_a_tracking_password_travels_as_a_reference_never_masked(monkeypatch):
    """A deployment's parameters are a JSON dump: a `${VAR}` password stays a reference that
    the run expands from the worker's environment; a password written out is refused at deploy
    (before: stored as `***`, which the run then sent as the password, without a word)."""

    def flow_fn(cfg: PipelineConfig) -> None: ...

    monkeypatch.setenv("MODALOPS_TEST_DB_PW", "s3cretpw")
    ref = "postgresql://mlflow:${MODALOPS_TEST_DB_PW}@db.internal:5432/mlflow"
    cfg = load_config([], [f"registry.tracking_uri={ref}"])
    assert cfg.registry.tracking_uri == "postgresql://mlflow:s3cretpw@db.internal:5432/mlflow"
    params = flow_parameters(flow_fn, cfg)
    assert params["cfg"]["registry"]["tracking_uri"] == ref
    assert "s3cretpw" not in str(params)
    # the run validates the stored parameters where the worker has the variable
    run_cfg = PipelineConfig.model_validate(params["cfg"])
    assert run_cfg.registry.tracking_uri == cfg.registry.tracking_uri
    monkeypatch.delenv("MODALOPS_TEST_DB_PW")
    with pytest.raises(ValueError, match=r"names \$\{MODALOPS_TEST_DB_PW\}, which is not set"):
        PipelineConfig.model_validate(params["cfg"])

    literal = load_config([], ["registry.tracking_uri=postgresql://mlflow:pw@db/mlflow"])
    with pytest.raises(ValueError, match=r"password written out.*\$\{MLFLOW_DB_PASSWORD\}"):
        flow_parameters(flow_fn, literal)
    masked = literal.model_dump(mode="json")  # what such a deployment used to store
    assert masked["registry"]["tracking_uri"] == "postgresql://mlflow:***@db/mlflow"
    with pytest.raises(ValueError, match=r"the password is the mask '\*\*\*'"):
        PipelineConfig.model_validate(masked)


def test_training_deployment_on_the_process_pool_with_a_utc_cron(prefect_api):
    cfg = load_config([REPO / "configs" / "ci.yaml"], ["train.max_epochs=4"])
    settings = DeploySettings(pool="modalops-test-deploy", cron="15 4 * * 1")
    log: list[str] = []
    deployments = (
        DEPLOYMENTS[0],
        FlowDeployment("flows/no_such_flow.py:nothing", "absent"),
        FlowDeployment("flows/training_pipeline.py:no_such_function", "does not import"),
    )
    deployed = deploy_flows(cfg, prefect_api, settings, log=log.append, deployments=deployments)

    assert [d.entrypoint for d in deployed] == [TRAINING]
    assert any("flows/no_such_flow.py does not exist yet" in line for line in log), log
    assert any("no_such_function does not import" in line for line in log), log
    dep = deployed[0]
    assert dep.full_name == f"training_pipeline/train-nightly-{cfg.name}"
    assert dep.url == f"{prefect_api.removesuffix('/api')}/deployments/deployment/{dep.id}"

    remote = _read_deployment(prefect_api, dep.id)
    assert remote.work_pool_name == "modalops-test-deploy"
    assert remote.entrypoint == TRAINING
    assert remote.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
    ]
    assert remote.job_variables == job_variables(settings)
    [schedule] = remote.schedules
    assert schedule.active
    assert schedule.schedule.cron == "15 4 * * 1"
    assert schedule.schedule.timezone == "UTC"
    # the description, which the deployments list shows, says when and in which timezone
    assert "Runs at '15 4 * * 1' (UTC)." in remote.description
    # the run form starts from the loaded config, the common settings at its top
    assert remote.parameters["cfg"]["max_epochs"] == 4
    assert remote.parameters["cfg"]["registry"]["model_name"] == "modalops-ci"

    # deploying again updates the same deployment (no duplicates in the UI)
    again = deploy_flows(cfg, prefect_api, settings, log=log.append)
    assert again[0].id == dep.id


def test_no_schedule_when_cron_is_empty(prefect_api):
    cfg = PipelineConfig(name="modalops-unscheduled")
    settings = DeploySettings(pool="modalops-test-deploy", cron=None)
    [dep] = deploy_flows(
        cfg, prefect_api, settings, log=lambda _: None, deployments=DEPLOYMENTS[:1]
    )
    assert _read_deployment(prefect_api, dep.id).schedules == []


def test_a_pool_of_another_type_is_refused(prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_api}), get_client(sync_client=True) as c:
        c.create_work_pool(WorkPoolCreate(name="modalops-test-k8s", type="kubernetes"))
    with pytest.raises(ValueError, match="'modalops-test-k8s' exists with type 'kubernetes'"):
        deploy_flows(
            PipelineConfig(),
            prefect_api,
            DeploySettings(pool="modalops-test-k8s"),
            log=lambda _: None,
            deployments=DEPLOYMENTS[:1],
        )


def test_worker_start_find_stop(prefect_api, tmp_path):
    home = tmp_path / "prefect-home"
    assert find_prefect_worker(home, "modalops-test-worker") is None
    service = start_prefect_worker(home, prefect_api, "modalops-test-worker")
    try:
        found = find_prefect_worker(home, "modalops-test-worker")
        assert found is not None
        assert found.pid == service.proc.pid
        assert found.api_url == prefect_api
        assert os.getpgid(found.pid) == found.pid  # its own process group
        assert found.log_path.exists()
        # another pool has no worker
        assert find_prefect_worker(home, "modalops-other") is None
        assert stop_prefect_worker(home, "modalops-test-worker") is True
        service.proc.wait(timeout=30)
        assert find_prefect_worker(home, "modalops-test-worker") is None
        assert stop_prefect_worker(home, "modalops-test-worker") is False
    finally:
        service.stop()


def test_worker_status_cli_says_when_none_runs(tmp_path, monkeypatch):
    from modalops.cli import app

    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["worker", "status", "--pool", "nobody"])
    assert out.exit_code == 1
    assert "no worker running for pool 'nobody'" in out.output
    assert not Path(".modalops").exists()  # status starts nothing


def _form_inputs(schema: dict) -> tuple[int, int, int]:
    """(inputs, groups, inputs the UI labels "(Optional)") of a parameter_openapi_schema, as
    Prefect's run form lays it out: an object is a group of its properties."""
    defs = schema.get("definitions", schema.get("$defs", {}))
    counts = [0, 0, 0]

    def walk(node: dict, required: bool) -> None:
        if "$ref" in node:
            node = {**defs[node["$ref"].split("/")[-1]], **node}
        if node.get("type") == "object" and "properties" in node:
            counts[1] += 1
            for key, prop in node["properties"].items():
                walk(prop, key in node.get("required", []))
            return
        counts[0] += 1
        counts[2] += not required

    for key, prop in schema["properties"].items():
        walk(prop, key in schema.get("required", []))
    return counts[0], counts[1] - 1, counts[2]  # the flow's one parameter is not a section


# measured on the forms (issue 24): 110 inputs in 10 groups for training, 45 in 8 for batch
# inference, 15 in 5 for feedback, none "(Optional)"; before, each flow's form had the whole
# config, 126 inputs in 13 groups, all "(Optional)". A few new settings may join a section
# (the margin); a section leaking into the wrong form may not.
FORM_LIMITS = {
    "training_pipeline": (110 + 10, 10),
    "batch_inference": (45 + 5, 8),
    "feedback": (15 + 3, 5),
}


def test_three_deployments_with_their_names_timezone_and_small_forms(prefect_api):
    cfg = load_config([REPO / "configs" / "ci.yaml"], ["name=modalops-forms"])
    settings = DeploySettings(
        pool="modalops-test-deploy", cron="0 3 * * *", timezone="Europe/Berlin"
    )
    deployed = deploy_flows(cfg, prefect_api, settings, log=print)
    assert [d.full_name for d in deployed] == [
        "training_pipeline/train-nightly-modalops-forms",
        "batch_inference/batch-inference-modalops-forms",
        "feedback/feedback-modalops-forms",
    ]
    figures = {}
    for dep in deployed:
        remote = _read_deployment(prefect_api, dep.id)
        assert "modalops-forms" in remote.tags
        inputs, groups, optional = _form_inputs(remote.parameter_openapi_schema)
        figures[dep.flow_name] = (inputs, groups, optional)
        max_inputs, max_groups = FORM_LIMITS[dep.flow_name]
        assert inputs <= max_inputs and groups <= max_groups, (dep.flow_name, inputs, groups)
        assert optional == 0, dep.flow_name
        # the stored values fill every input of the form
        props = remote.parameter_openapi_schema["definitions"]
        form = next(v for k, v in props.items() if k.endswith("Form"))
        assert set(remote.parameters["cfg"]) == set(form["properties"])
        if dep.flow_name == "training_pipeline":
            [schedule] = remote.schedules
            assert schedule.schedule.timezone == "Europe/Berlin"
            assert "Runs at '0 3 * * *' (Europe/Berlin)." in remote.description
            assert not {"inference", "review"} & set(form["properties"])
        else:
            assert remote.schedules == []
            assert "Runs on demand." in remote.description
    print("form inputs, groups, (Optional) per flow:", figures)
