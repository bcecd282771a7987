"""Secrets never reach logs, MLflow, the object store or the Prefect server.

The real training flow runs once on a tiny demo set (S3 store on moto, MLflow on a fresh
PostgreSQL database whose URI carries a password, a real Prefect server) with planted secret
values in the environment and the config; then every place the pipeline writes to is read back
through its own client and searched for the planted values. A positive control plants a value
in each place on purpose and checks that the same scan finds it.
"""

from __future__ import annotations

import io
import logging
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import sqlalchemy
from mlflow import MlflowClient

from modalops.config import load_config
from modalops.store import open_store
from modalops_demo.generate import DemoDataConfig, generate_demo_data
from tests.conftest import REPO

pytestmark = [pytest.mark.slow]

TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".yaml", ".yml", ".txt", ".html", ".csv", ".log")


def _token(label: str) -> str:
    return f"{label}-{secrets.token_hex(12)}"


class _Records(logging.Handler):
    """Every log record's formatted message, from any logger it is attached to."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.name}: {record.getMessage()} {record.exc_text or ''}")
        except Exception as exc:  # a record whose args do not format is still a record
            self.lines.append(f"{record.name}: {record.msg!r} {record.args!r} ({exc})")


def _hits(text: str, planted: dict[str, str], where: str) -> list[str]:
    return [f"{name} in {where}" for name, value in planted.items() if value in text]


# ---- the scans ------------------------------------------------------------------------------


def scan_mlflow(tracking_uri: str, planted: dict[str, str], tmp: Path) -> list[str]:
    """Every run's params, tags and metric names and every artifact file; every registered
    model version's tags and description."""
    client = MlflowClient(tracking_uri)
    found: list[str] = []
    for exp in client.search_experiments():
        found += _hits(f"{exp.name} {exp.artifact_location} {exp.tags}", planted, "experiment")
        for run in client.search_runs([exp.experiment_id]):
            rid = run.info.run_id
            data = run.data
            text = repr((data.params, data.tags, sorted(data.metrics), run.info.run_name))
            found += _hits(text, planted, f"MLflow run {rid} params/tags/metrics")
            for ds in run.inputs.dataset_inputs:
                found += _hits(repr(ds), planted, f"MLflow run {rid} dataset input")
            local = Path(client.download_artifacts(rid, "", str(tmp / rid)))
            for path in local.rglob("*"):
                if path.is_file():
                    found += _hits(
                        path.read_bytes().decode("utf-8", "replace"),
                        planted,
                        f"MLflow artifact {rid}/{path.relative_to(local)}",
                    )
    for model in client.search_registered_models():
        for mv in client.search_model_versions(f"name='{model.name}'"):
            text = repr((mv.tags, mv.description, mv.source, model.tags, model.description))
            found += _hits(text, planted, f"model version {model.name}/{mv.version}")
    return found


def scan_store(uris: list[str], planted: dict[str, str]) -> list[str]:
    """Every text-like object (and every parquet table, as text) under the store roots."""
    found: list[str] = []
    for uri in uris:
        store = open_store(uri)
        for key in store.list(""):
            if key.endswith(TEXT_SUFFIXES):
                text = store.get_bytes(key).decode("utf-8", "replace")
            elif key.endswith(".parquet"):
                frame = pd.read_parquet(io.BytesIO(store.get_bytes(key)))
                cells = frame.map(lambda v: "" if isinstance(v, bytes | bytearray) else str(v))
                text = cells.to_csv(index=False)  # payload bytes are not text
            else:
                continue
            found += _hits(text, planted, store.uri(key))
    return found


def scan_prefect(api_url: str, flow_run_id: str, planted: dict[str, str]) -> list[str]:
    """The flow run (parameters, state, result) and its task runs, logs and artifacts, read
    through the Prefect client."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
        TaskRunFilter,
    )
    from prefect.client.schemas.sorting import ArtifactSort, TaskRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    found: list[str] = []
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        fr = client.read_flow_run(flow_run_id)
        found += _hits(fr.model_dump_json(), planted, f"Prefect flow run {fr.name}")
        try:
            result = fr.state.result(raise_on_failure=False)
        except Exception as exc:  # a result that cannot be read back is reported, not hidden
            result = f"<unreadable: {exc}>"
        found += _hits(repr(result), planted, "Prefect flow run result")
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[fr.id])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )
        assert runs, "the flow run has no task runs on the server"
        for tr in runs:
            found += _hits(tr.model_dump_json(), planted, f"Prefect task run {tr.name}")
        logs, page = [], None
        while page is None or len(page) == 200:
            page = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[fr.id])),
                limit=200,
                offset=len(logs),
            )
            logs += page
        assert logs, "the flow run shipped no logs to the server"
        found += _hits("\n".join(log.message for log in logs), planted, "Prefect flow-run logs")
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[fr.id])),
            flow_run_filter=FlowRunFilter(),
            task_run_filter=TaskRunFilter(),
            sort=ArtifactSort.CREATED_DESC,
            limit=200,
            offset=0,
        )
        for art in artifacts:
            found += _hits(art.model_dump_json(), planted, f"Prefect artifact {art.key}")
    return found


def scan_files(root: Path, planted: dict[str, str]) -> list[str]:
    """Files Prefect persisted locally (task results, caches) under its storage path."""
    found: list[str] = []
    for path in root.rglob("*") if root.exists() else []:
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace")
            found += _hits(text, planted, f"local file {path}")
    return found


# ---- one pipeline run, shared by the scans -----------------------------------------------------


def _fresh_pg_database(pg: str) -> tuple[sqlalchemy.Engine, str]:
    admin = sqlalchemy.create_engine(
        f"postgresql+psycopg://{pg}/postgres",
        isolation_level="AUTOCOMMIT",
        poolclass=sqlalchemy.pool.NullPool,
    )
    name = f"modalops_secrets_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except sqlalchemy.exc.OperationalError as err:
        pytest.fail(f"PostgreSQL at {pg} is not reachable (set MODALOPS_TEST_PG): {err}")
    return admin, name


@pytest.fixture(scope="module")
def pipeline_run(s3_server, prefect_api, tmp_path_factory, postgres) -> Iterator[dict]:
    import boto3
    from prefect.logging.handlers import APILogHandler
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    from flows.training_pipeline import training_pipeline

    tmp = tmp_path_factory.mktemp("secrets")
    planted = {
        "AWS_SECRET_ACCESS_KEY": _token("awssecret"),
        "MLFLOW_TRACKING_PASSWORD": _token("mlflowpw"),
        "LABEL_STUDIO_API_KEY": _token("lskey"),
        "database password": _token("dbpw"),
    }
    user, _, hostport = postgres.partition("@")
    admin, db = _fresh_pg_database(postgres)
    # trust auth on the test server: the password is sent and ignored, so it is a real
    # credential as far as modalops can tell
    tracking_uri = f"postgresql+psycopg://{user}:{planted['database password']}@{hostport}/{db}"
    records = _Records()
    loggers = [logging.getLogger(n) for n in ("", "prefect", "modalops", "mlflow")]
    bucket = f"modalops-{uuid.uuid4().hex[:10]}"
    storage = tmp / "prefect-storage"
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD", "LABEL_STUDIO_API_KEY"):
            mp.setenv(name, planted[name])
        mp.setenv("MLFLOW_TRACKING_USERNAME", "modalops")
        mp.setenv("AWS_ENDPOINT_URL", s3_server.url)
        mp.setenv("MLFLOW_S3_ENDPOINT_URL", s3_server.url)
        boto3.client("s3", endpoint_url=s3_server.url).create_bucket(Bucket=bucket)
        raw_uri, store_uri = f"s3://{bucket}/raw", f"s3://{bucket}/store"
        generate_demo_data(open_store(raw_uri), DemoDataConfig(sessions=6, duration_s=20.0, seed=3))
        cfg = load_config(
            [REPO / "configs" / "ci.yaml"],
            [
                f"store.uri={store_uri}",
                f"ingest.raw_uri={raw_uri}",
                f"registry.tracking_uri={tracking_uri}",
                "train.max_epochs=1",  # what is logged does not depend on how well it learns
                "train.baselines=false",
            ],
        )
        for lg in loggers:
            lg.addHandler(records)
        try:
            with temporary_settings(
                {PREFECT_API_URL: prefect_api, PREFECT_LOCAL_STORAGE_PATH: storage}
            ):
                summary = training_pipeline(cfg)
                APILogHandler().flush()  # ship buffered logs while the server is up
            yield {
                "planted": planted,
                "summary": summary,
                "tracking_uri": tracking_uri,
                "store_uris": [raw_uri, store_uri],
                "prefect_api": prefect_api,
                "storage": storage,
                "records": records,
                "tmp": tmp,
            }
        finally:
            for lg in loggers:
                lg.removeHandler(records)
            mlflow.set_tracking_uri(None)
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            admin.dispose()


def test_the_pipeline_ran_with_the_planted_secrets(pipeline_run):
    summary = pipeline_run["summary"]
    assert summary["dataset_version"] and summary["flow_run_id"]
    assert pipeline_run["planted"]["database password"] in pipeline_run["tracking_uri"]


def test_no_secret_in_mlflow(pipeline_run):
    assert (
        scan_mlflow(pipeline_run["tracking_uri"], pipeline_run["planted"], pipeline_run["tmp"])
        == []
    )


def test_no_secret_in_the_object_store(pipeline_run):
    assert scan_store(pipeline_run["store_uris"], pipeline_run["planted"]) == []


def test_no_secret_on_the_prefect_server(pipeline_run):
    planted = pipeline_run["planted"]
    found = scan_prefect(
        pipeline_run["prefect_api"], pipeline_run["summary"]["flow_run_id"], planted
    )
    assert found + scan_files(pipeline_run["storage"], planted) == []


def test_no_secret_in_the_log_output(pipeline_run):
    lines = pipeline_run["records"].lines
    assert len(lines) > 10, "the pipeline's log records were not captured"
    planted = pipeline_run["planted"].values()
    assert [line[:300] for line in lines if any(v in line for v in planted)] == []


def test_the_scans_find_a_planted_value(pipeline_run):
    """Positive control: the same scans report a secret put in each place on purpose."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import LogCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    planted = pipeline_run["planted"]
    control = {"control": _token("control")}
    value = control["control"]
    client = MlflowClient(pipeline_run["tracking_uri"])
    run_id = pipeline_run["summary"]["mlflow_parent_run_id"]
    client.set_tag(run_id, "control.tag", value)
    client.log_text(run_id, f"leaked {value}", "control/leak.txt")
    assert any(
        "MLflow run" in h
        for h in scan_mlflow(pipeline_run["tracking_uri"], control, pipeline_run["tmp"] / "c")
    )
    assert any(
        "control/leak.txt" in h
        for h in scan_mlflow(pipeline_run["tracking_uri"], control, pipeline_run["tmp"] / "d")
    )

    store = open_store(pipeline_run["store_uris"][1])
    store.put_text("runs/control/notes.md", f"a {value} here")
    assert f"control in {store.uri('runs/control/notes.md')}" in scan_store(
        pipeline_run["store_uris"], control
    )

    flow_run_id = pipeline_run["summary"]["flow_run_id"]
    settings = temporary_settings({PREFECT_API_URL: pipeline_run["prefect_api"]})
    with settings, get_client(sync_client=True) as pc:
        pc.create_logs(
            [
                LogCreate(
                    name="control",
                    level=20,
                    message=f"control {value}",
                    timestamp=pd.Timestamp.now(tz="UTC").to_pydatetime(),
                    flow_run_id=flow_run_id,
                )
            ]
        )
    assert "control in Prefect flow-run logs" in scan_prefect(
        pipeline_run["prefect_api"], flow_run_id, control
    )
    logging.getLogger("modalops").addHandler(pipeline_run["records"])
    try:
        logging.getLogger("modalops").warning("control %s", value)
    finally:
        logging.getLogger("modalops").removeHandler(pipeline_run["records"])
    assert _hits("\n".join(pipeline_run["records"].lines), control, "log output")
    # the control value is not one of the planted secrets (the real scans stay meaningful)
    assert value not in planted.values()
