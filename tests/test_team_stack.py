"""The team stack's databases: Prefect and MLflow both on PostgreSQL, end to end.

A real Prefect server subprocess on a fresh PostgreSQL database (asyncpg), MLflow tracking on
another fresh PostgreSQL database (psycopg2), the real training flow on a tiny demo set, then the
record is read back three ways: the Prefect API, the MLflow client, and SQL on the two databases
themselves (so a silent fallback to SQLite could not pass). Both databases are dropped afterwards.

PostgreSQL comes from the `postgres` fixture (tests/conftest.py): $MODALOPS_TEST_PG, else the
machine's server on 127.0.0.1:5432 with trust auth, else a private cluster the tests start.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import mlflow
import numpy as np
import pandas as pd
import pytest
import sqlalchemy

from modalops.config import load_config
from modalops.services import start_prefect_server
from modalops.shard import iter_raw_samples, load_manifest
from modalops.store import open_store
from modalops_demo.generate import DemoDataConfig, generate_demo_data
from modalops_demo.names import LABELS
from tests.conftest import QUICK_PIPELINE, REPO, fail_on_server_service_errors

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _admin_engine(pg: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(
        f"postgresql://{pg}/postgres",
        isolation_level="AUTOCOMMIT",
        poolclass=sqlalchemy.pool.NullPool,
    )


@contextmanager
def fresh_databases(pg: str, *prefixes: str) -> Iterator[list[str]]:
    """One new, empty PostgreSQL database per prefix (unique names); dropped on exit."""
    names = [f"{p}_{uuid.uuid4().hex[:12]}" for p in prefixes]
    engine = _admin_engine(pg)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.OperationalError as err:
        pytest.fail(f"PostgreSQL at {pg} is not reachable (set MODALOPS_TEST_PG): {err}")
    created: list[str] = []
    try:
        with engine.connect() as conn:
            for name in names:
                conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
                created.append(name)
        yield names
    finally:
        with engine.connect() as conn:
            for name in created:
                # FORCE: end connections a pool or a log shipper still holds (PostgreSQL 13+)
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def _scalar_rows(url: str, sql: str, **params) -> list[tuple]:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sqlalchemy.text(sql), params)]
    finally:
        engine.dispose()


def test_training_flow_on_postgres_prefect_and_mlflow(tmp_path, monkeypatch, postgres):
    pg = postgres
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogHandler
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.training_pipeline import training_pipeline

    t0 = time.monotonic()
    with fresh_databases(pg, "modalops_prefect", "modalops_mlflow") as (prefect_db, mlflow_db):
        prefect_url = f"postgresql+asyncpg://{pg}/{prefect_db}"
        tracking_uri = f"postgresql://{pg}/{mlflow_db}"
        raw_uri, store_uri = str(tmp_path / "raw"), str(tmp_path / "store")
        monkeypatch.chdir(tmp_path)  # nothing MLflow might default to lands in the repo

        # The server's migrations, MLflow's migrations and the demo data overlap (2 CI cores).
        with ThreadPoolExecutor(1) as pool:
            server_future = pool.submit(
                start_prefect_server, tmp_path / "prefect-home", database_url=prefect_url
            )
            mlflow.MlflowClient(tracking_uri).search_experiments()  # runs MLflow's migrations
            generate_demo_data(
                open_store(raw_uri), DemoDataConfig(sessions=6, duration_s=20.0, seed=3)
            )
            server = server_future.result()
        try:
            cfg = load_config(
                [REPO / "configs" / "ci.yaml"],
                [
                    f"store.uri={store_uri}",
                    f"ingest.raw_uri={raw_uri}",
                    f"registry.tracking_uri={tracking_uri}",
                    # what is under test is where the record lands, not the models
                    *QUICK_PIPELINE,
                ],
            )
            with temporary_settings({PREFECT_API_URL: server.url}):
                summary = training_pipeline(cfg)
                APILogHandler().flush()  # ship buffered logs while the server is up

            assert summary["validation_passed"] is True, summary
            flow_run_id = summary["flow_run_id"]

            # Prefect: the flow run is COMPLETED, read back through the server's API...
            with (
                temporary_settings({PREFECT_API_URL: server.url}),
                get_client(sync_client=True) as client,
            ):
                flow_run = client.read_flow_run(flow_run_id)
                assert flow_run.state.is_completed(), flow_run.state
                assert client.read_flow(flow_run.flow_id).name == "training_pipeline"
            # ...and stored in the PostgreSQL database the server was given
            rows = _scalar_rows(
                f"postgresql://{pg}/{prefect_db}",
                "SELECT state_type FROM flow_run WHERE id = :id",
                id=str(flow_run_id),
            )
            assert rows == [("COMPLETED",)], rows
            task_runs = _scalar_rows(
                f"postgresql://{pg}/{prefect_db}",
                "SELECT count(*) FROM task_run WHERE flow_run_id = :id AND state_type = 'COMPLETED'",
                id=str(flow_run_id),
            )[0][0]
            assert task_runs >= 8, task_runs  # every stage ran as a task on this server
        finally:
            server.stop()
        # the server's services (scheduler, ...) ran on PostgreSQL without an error
        fail_on_server_service_errors(server)

        # MLflow: the version is registered with alias champion, in the PostgreSQL database
        name = cfg.registry.model_name
        client = mlflow.MlflowClient(tracking_uri)
        champion = client.get_model_version_by_alias(name, "champion")
        assert str(champion.version) == str(summary["model_version"])
        assert champion.tags.get("prefect_flow_run_id") == str(flow_run_id)
        aliases = _scalar_rows(
            tracking_uri,
            "SELECT name, alias, version FROM registered_model_aliases WHERE name = :n",
            n=name,
        )
        assert (name, "champion", int(champion.version)) in aliases, aliases
        assert _scalar_rows(
            tracking_uri,
            "SELECT status FROM model_versions WHERE name = :n AND version = :v",
            n=name,
            v=int(champion.version),
        ) == [("READY",)]
        # artifacts went to the configured store, not to a default ./mlruns
        assert client.get_run(champion.run_id).info.artifact_uri.startswith(
            (tmp_path / "store").as_uri()
        )

        # a registry consumer loads the champion from the PostgreSQL registry and predicts
        mlflow.set_tracking_uri(tracking_uri)  # the flow set it too (registry.py)
        model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
        store = open_store(store_uri)
        manifest = load_manifest(store, summary["dataset_version"])
        held_out = [
            s for _, s in zip(range(8), iter_raw_samples(store, manifest, "test"), strict=False)
        ]
        assert held_out, "no test samples in the tiny set"
        streams = [s["streams"] for s in held_out]
        frame = pd.DataFrame(
            {
                "camera": [s["camera"] for s in streams],
                "audio": [s["audio"] for s in streams],
                "vibration": [np.load(io.BytesIO(s["vibration"])).tolist() for s in streams],
                "notes": [s["notes"] or "" for s in streams],
            }
        )
        out = model.predict(frame)
        assert len(out) == len(held_out)
        assert set(out["label"]) <= set(LABELS)
        assert ((out["probability"] > 0) & (out["probability"] <= 1)).all()

    # both databases are gone
    left = _scalar_rows(
        f"postgresql://{pg}/postgres",
        "SELECT datname FROM pg_database WHERE datname IN (:a, :b)",
        a=prefect_db,
        b=mlflow_db,
    )
    assert left == [], left
    print(f"team stack e2e: {time.monotonic() - t0:.1f} s")
