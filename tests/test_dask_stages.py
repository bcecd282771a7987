"""The data stages on a 2-worker Dask cluster give what they give in one process.

The same tiny raw set goes through the default path's tasks (ingest → align → validate, in this
process) and through the Dask subflow (batches of sessions on a LocalCluster through Prefect's
DaskTaskRunner, against a real Prefect server); catalog, aligned samples (every column, payload
bytes included) and the validation verdict must be equal.
"""

from __future__ import annotations

import pandas as pd
import pytest

from flows.data_stages import run_data_stages_on_dask
from modalops.config import load_config
from modalops.dataset.load import load_dataset_spec
from modalops.ingest.recordings import session_items
from modalops.register.tracking import start_pipeline_run
from modalops.runs import get_frame, new_run
from modalops.store import open_store
from modalops_demo.generate import DemoDataConfig, generate_demo_data
from tasks.align import align_sessions
from tasks.ingest import ingest_recordings
from tasks.validate import validate_samples

pytestmark = pytest.mark.timeout(300)


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def _samples(store, part_keys: list[str]) -> pd.DataFrame:
    frame = pd.concat([get_frame(store, k) for k in part_keys], ignore_index=True)
    return _sorted(frame, ["session_id", "window_index"])


def test_dask_data_stages_equal_single_process(prefect_api, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    raw = open_store(str(tmp_path / "raw"))
    generate_demo_data(raw, DemoDataConfig(sessions=6, duration_s=20.0, seed=5))
    cfg = load_config(
        [],
        [
            f"store.uri={tmp_path / 'store'}",
            f"ingest.raw_uri={tmp_path / 'raw'}",
            f"registry.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            "validation.min_samples_per_subgroup=5",
            "validation.fail_on_error=false",  # compare verdicts, whichever they are
            "dask.enabled=true",
            "dask.workers=2",
            "dask.batch_sessions=2",  # 3 batches over 2 workers
        ],
    )
    spec = load_dataset_spec(raw)
    store = open_store(cfg.store.uri)

    def tracking():
        return start_pipeline_run(
            cfg.registry.tracking_uri, "dask-test", run_name="t", tags={}, config={}
        )

    with temporary_settings({PREFECT_API_URL: prefect_api}):
        # the default path: the stages' tasks in this process
        one = new_run(cfg.store)
        t1 = tracking()
        ing1 = ingest_recordings(one, spec, cfg.ingest, t1)
        al1 = align_sessions(one, spec, cfg.ingest.raw_uri, ing1, cfg.align, t1)
        ver1 = validate_samples(one, spec, ing1, al1, cfg.validation, t1)
        # the same stages, batches of sessions on a 2-worker local cluster
        two = new_run(cfg.store)
        t2 = tracking()
        ing2, al2, ev2 = run_data_stages_on_dask(two, spec, cfg, t2)
        ver2 = validate_samples(two, spec, ing2, al2, cfg.validation, t2, None, ev2)

    # the fan-out really happened: several batches, each under its own part prefix
    assert len(al2.part_keys) == 3 and all(
        f"runs/{two.run_key}/batches/" in k for k in al2.part_keys
    )
    assert len(set(al2.part_keys)) == len(al2.part_keys)

    keys = ["session_id", "stream"]
    pd.testing.assert_frame_equal(_sorted(ing1.catalog, keys), _sorted(ing2.catalog, keys))
    assert len(ing1.catalog) == 6 * len(session_items(spec))  # every session fully catalogued
    pd.testing.assert_frame_equal(
        _sorted(ing1.quarantine, ["session_id", "uri"]),
        _sorted(ing2.quarantine, ["session_id", "uri"]),
    )

    s1, s2 = _samples(store, al1.part_keys), _samples(store, al2.part_keys)
    assert len(s1) > 60 and al1.n_samples == al2.n_samples == len(s1)
    assert list(s1.columns) == list(s2.columns)
    pd.testing.assert_frame_equal(s1, s2)  # every column, payload bytes included
    pd.testing.assert_frame_equal(
        _sorted(al1.report, keys), _sorted(al2.report, keys), check_dtype=False
    )
    assert al1.summary == pytest.approx(al2.summary, nan_ok=True)

    assert ver1.passed == ver2.passed
    assert ver1.bad_fraction == ver2.bad_fraction
    assert [(c.check, c.passed, c.observed) for c in ver1.checks] == [
        (c.check, c.passed, c.observed) for c in ver2.checks
    ]
    pd.testing.assert_frame_equal(
        _sorted(ver1.stats, ["session_id", "window_index"]),
        _sorted(ver2.stats, ["session_id", "window_index"]),
    )
