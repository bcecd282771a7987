"""End to end on a dataset nobody here generated: BasicMotions (a smart watch's accelerometer and
gyroscope, four activities), shipped in the `aeon` wheel on PyPI.

It goes through the same flow as the demo with only its dataset spec and a config diff
(examples/basic_motions/): other stream names, another kind mix, session-level labels, other
metadata, millisecond CSV timestamps beside second-based Parquet. Nothing demo-specific may be
needed for it to pass.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from modalops.config import load_config
from modalops.dataset.spec import load_spec_file
from modalops.store import open_store
from tests.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EXAMPLE = REPO / "examples" / "basic_motions"


@pytest.fixture(scope="module")
def basic_motions_raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("basic_motions")
    cache = REPO / ".modalops" / "cache"  # the wheel is downloaded once per machine
    subprocess.run(
        [sys.executable, str(EXAMPLE / "prepare.py"), str(out), "--cache", str(cache)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_dataset_check_passes_on_the_public_recordings(basic_motions_raw):
    out = subprocess.run(
        [sys.executable, "-m", "modalops.cli", "dataset", "check", str(basic_motions_raw)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "80 sessions, 2 streams checked: OK" in out.stdout


def test_basic_motions_through_the_whole_pipeline(basic_motions_raw, prefect_api, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.training_pipeline import training_pipeline
    from modalops.shard import load_manifest

    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config(
        [EXAMPLE / "config.yaml"],
        [
            f"ingest.raw_uri={basic_motions_raw}",
            f"store.uri={tmp_path / 'store'}",
            f"registry.tracking_uri={tracking_uri}",
            "train.max_epochs=6",
            "train.hidden_dim=16",
            "validation.min_samples_per_subgroup=5",
        ],
    )
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        summary = training_pipeline(cfg)

    spec = load_spec_file(EXAMPLE / "dataset.yaml")
    assert summary["validation_passed"] is True
    # one baseline per declared stream, named after the user's streams
    assert set(summary["unimodal_macro_f1"]) == {f"only_{s}" for s in spec.streams} or set(
        summary["unimodal_macro_f1"]
    ) == set(spec.streams)
    # the activities are easy to tell apart from wrist motion: far above chance (0.25)
    assert summary["fused_macro_f1"] > 0.6, summary

    store = open_store(str(tmp_path / "store"))
    manifest = load_manifest(store, summary["dataset_version"])
    assert manifest.spec["streams"].keys() == spec.streams.keys()
    assert manifest.spec_digest == spec.digest()

    # the evaluation sliced by the spec's slice column, not by any demo column
    report_keys = [k for k in store.list("runs") if k.endswith("evaluation/report.json")]
    assert report_keys
    report = store.get_text(report_keys[0])
    assert "archive_split" in report and "site" not in report

    # the registered model carries the spec and takes the user's stream names as input
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    champion = client.get_model_version_by_alias(cfg.registry.model_name, "champion")
    spec_path = client.download_artifacts(champion.run_id, "dataset/dataset.yaml", str(tmp_path))
    carried = yaml.safe_load(Path(spec_path).read_text(encoding="utf-8"))
    assert carried["labels"]["classes"] == spec.labels.classes
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{cfg.registry.model_name}@champion")
    accel = pd.read_csv(basic_motions_raw / "rec" / "test-000" / "accel.csv")
    gyro = pd.read_parquet(basic_motions_raw / "rec" / "test-000" / "gyro.parquet")
    frame = pd.DataFrame(
        {
            "wrist_accel": [accel[["x", "y", "z"]].to_numpy()[:20].tolist()],
            "wrist_gyro": [gyro[["gx", "gy", "gz"]].to_numpy()[:20].tolist()],
        }
    )
    pred = model.predict(frame)
    assert len(pred) == 1 and pred["label"].iloc[0] in spec.labels.classes
    assert {f"prob_{c}" for c in spec.labels.classes} <= set(pred.columns)
