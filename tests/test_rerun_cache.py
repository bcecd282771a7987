"""Re-running the training pipeline on the same input and config is a cache hit at every stage.

The tiny flow runs twice against a real Prefect server and MLflow on SQLite: the second run
reuses the dataset version, trains no model, reuses the evaluation and registers nothing new;
the store gains only the second run's own folder.
"""

from __future__ import annotations

import time

import pytest
from mlflow import MlflowClient

from modalops.config import load_config
from modalops.register.tracking import PARENT_TAG
from modalops.store import open_store
from modalops_demo.generate import DemoDataConfig, generate_demo_data
from tests.conftest import REPO

pytestmark = [pytest.mark.slow]


def test_second_run_is_a_cache_hit_at_every_stage(tmp_path, prefect_api):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.training_pipeline import training_pipeline

    raw_uri, store_uri = str(tmp_path / "raw"), str(tmp_path / "store")
    generate_demo_data(open_store(raw_uri), DemoDataConfig(sessions=8, duration_s=30.0, seed=5))
    cfg = load_config(
        [REPO / "configs" / "ci.yaml"],
        [
            f"store.uri={store_uri}",
            f"ingest.raw_uri={raw_uri}",
            f"registry.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            "train.max_epochs=2",
            "train.baselines=false",  # the fused model alone: the cache is per model anyway
        ],
    )
    store = open_store(store_uri)
    client = MlflowClient(cfg.registry.tracking_uri)
    seconds, summaries, listings = [], [], []
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        for _ in range(2):
            started = time.perf_counter()
            summaries.append(training_pipeline(cfg))
            seconds.append(time.perf_counter() - started)
            listings.append(set(store.list()))
    first, second = summaries

    assert second["dataset_version"] == first["dataset_version"]
    # no new model version, no second challenger: the first run's version is reused
    versions = client.search_model_versions(f"name = '{cfg.registry.model_name}'")
    assert [str(v.version) for v in versions] == [str(first["model_version"])]
    assert second["model_version"] == first["model_version"]
    assert second["mlflow_run_id"] == first["mlflow_run_id"]
    mv = client.get_model_version(cfg.registry.model_name, str(versions[0].version))
    assert set(mv.aliases) == {"challenger", "champion"}
    assert any(
        "already registered with the same fingerprint" in r for r in second["promotion_reasons"]
    )

    # 0 models trained: every child run of the second parent is tagged as a cache hit whose
    # weights come from the first parent's child
    experiment = client.get_experiment_by_name(cfg.registry.experiment).experiment_id
    runs = client.search_runs([experiment])
    children = [r for r in runs if r.data.tags.get(PARENT_TAG) == second["mlflow_parent_run_id"]]
    first_children = {
        r.info.run_id for r in runs if r.data.tags.get(PARENT_TAG) == first["mlflow_parent_run_id"]
    }
    assert len(children) == len(first_children) >= 1
    assert all(c.data.tags.get("modalops.cache_hit") == "true" for c in children)
    assert {c.data.tags["modalops.trained_in_run"] for c in children} == first_children
    # the plan's shard time is the first run's: the second wrote no shard, so it logs none
    parents = [client.get_run(s["mlflow_parent_run_id"]).data.metrics for s in summaries]
    assert parents[0]["shard.seconds"] > 0 and "shard.seconds" not in parents[1]
    assert parents[1]["align.seconds"] > 0
    assert second["unimodal_macro_f1"] == first["unimodal_macro_f1"]
    assert second["fused_macro_f1"] == first["fused_macro_f1"]

    # the store gained nothing but the second run's own folders: runs/<run_key>/ and the MLflow
    # artifacts of its parent and child runs
    own = [f"runs/{second['run_key']}/", f"mlflow/{second['mlflow_parent_run_id']}/"]
    own += [f"mlflow/{c.info.run_id}/" for c in children]
    added = listings[1] - listings[0]
    assert any(k.startswith(own[0]) for k in added)
    strays = sorted(k for k in added if not k.startswith(tuple(own)))
    assert not strays, strays
    checkpoints = [k for k in listings[1] if k.startswith("datasets/") and k.endswith(".pt")]
    assert len(checkpoints) == len(children)

    print(
        f"\nfirst run {seconds[0]:.1f} s, second run {seconds[1]:.1f} s "
        f"({seconds[0] / seconds[1]:.1f}x); models trained: {len(first_children)} then 0; "
        f"model versions: {[str(v.version) for v in versions]}; keys added by run 2: {len(added)}"
    )
    # No timing assertion: on a shared 2-core CI machine the ratio is noise (CI once measured
    # 9.2 s then 6.9 s). That nothing was trained or registered again is asserted above; the
    # times are printed for the record.
