"""A dataset that is not the demo: two cameras and a wrist IMU with an unknown clock, through
ingest and align; its offset must be estimated within one frame period."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from modalops.align import align_dataset
from modalops.config.align import AlignConfig
from modalops.config.data import IngestConfig
from modalops.dataset import columns
from modalops.dataset.layout import ClockModel
from modalops.dataset.spec import load_spec_file
from modalops.ingest import ingest_recordings
from modalops.store import LocalStore
from modalops.testing.recordings import FPS, LIGHT_ROI, write_recordings

ROI = {"kind": "roi_brightness", "roi": list(LIGHT_ROI), "channel": "green"}
SPEC = {
    "name": "two-cams-imu",
    "sessions": {"table": "recordings.csv", "id_column": "rec", "folder": "data/{session_id}/raw"},
    "reference": "overhead",
    "streams": {
        "overhead": {
            "kind": "image",
            "path": "overhead/frames.parquet",
            "params": {
                "time_column": "stamp_ms",
                "time_unit": "ms",
                "file_column": "png",
                "formats": ["PNG"],
            },
            "cue": ROI,
        },
        "bench": {
            "kind": "image",
            "path": "bench/idx.csv",
            "params": {"time_column": "time"},
            "cue": ROI,
            "clock": {"initial": "zero", "search_s": 4.0},
        },
        "wrist": {
            "kind": "timeseries",
            "path": "wrist/*.csv",
            "params": {"time_column": "ts", "channels": ["acc1", "acc2"], "sample_rate": 50.0},
            "cue": "magnitude_envelope",
            "clock": {"initial": "zero", "search_s": 4.0},
        },
    },  # fmt: skip
    "labels": {
        "classes": ["rest", "grip", "lift"],
        "source": "intervals",
        "path": "events.csv",
        "start_column": "begin",
        "end_column": "finish",
        "label_column": "what",
    },  # fmt: skip
    "metadata": {"columns": ["hand"], "subject": "person", "stratify": "hand"},
}
CLOCKS = {"bench": ClockModel(-0.8, 30.0), "wrist": ClockModel(2.1, -50.0)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("byod")
    raw = LocalStore(root / "raw")
    truths = write_recordings(raw, SPEC, sessions=3, duration_s=40.0, seed=4, clocks=CLOCKS,
                              durations=[40.0, 30.0, 50.0])  # fmt: skip
    spec = load_spec_file(root / "raw" / "dataset.yaml")
    return raw, spec, truths, root


def test_other_dataset_is_ingested_with_its_own_names(dataset):
    raw, spec, _, _ = dataset
    result = ingest_recordings(raw, spec, IngestConfig())
    cat = result.catalog
    assert len(result.quarantine) == 0, result.quarantine["reason"].tolist()
    assert set(cat["stream"]) == {"labels", "overhead", "bench", "wrist"}  # no clock file declared
    assert (cat["status"] == "ok").all()
    assert list(cat.columns[-2:]) == ["hand", "subject"]
    wrist = cat[cat["stream"] == "wrist"].set_index("session_id")
    assert wrist.loc["rec-000", "key"] == "data/rec-000/raw/wrist/rec.csv"  # the glob's match
    assert wrist["sample_rate"].tolist() == pytest.approx([50.0] * 3, rel=0.01)
    over = cat[cat["stream"] == "overhead"].set_index("session_id")
    assert over.loc["rec-000", "n_items"] == 160 and over.loc[
        "rec-000", "sample_rate"
    ] == pytest.approx(FPS, rel=0.1)


def test_unknown_clocks_are_estimated_within_one_frame(dataset):
    raw, spec, truths, root = dataset
    ingested = ingest_recordings(raw, spec, IngestConfig())
    out = LocalStore(root / "out")
    result = align_dataset(
        raw, spec, ingested.catalog, AlignConfig(), out, "runs/x", ingested.quarantine
    )
    rep = result.report[result.report["stream"].isin(["bench", "wrist"])]
    assert len(rep) == 6 and (rep["method"] == "estimate").all(), rep[["stream", "fallback_reason"]]
    for row in rep.itertuples():
        assert abs(row.residual_offset_s) < 1.0 / FPS and abs(row.residual_at_end_s) < 1.0 / FPS, (
            row
        )
        assert abs(row.offset_s - truths[row.session_id][row.stream].offset_s) < 1.0 / FPS
    samples = pd.concat(pd.read_parquet(io.BytesIO(out.get_bytes(k))) for k in result.part_keys)
    assert list(samples.columns) == columns.sample_columns(spec)
    assert set(samples["label"].dropna()) <= {"rest", "grip", "lift"}
    assert samples["has__wrist"].mean() > 0.9 and samples["has__bench"].mean() > 0.9
    # Sessions of different lengths give different numbers of windows.
    n = samples.groupby("session_id").size()
    assert n["rec-002"] > n["rec-000"] > n["rec-001"]
    assert samples["x__overhead"].iloc[0][:4] == b"\x89PNG"

    # Without estimation the wrist stream stays 2 s off: its starting guess is zero.
    none = align_dataset(raw, spec, ingested.catalog, AlignConfig(mode="metadata"), out, "runs/y")
    wrist = none.report[none.report["stream"] == "wrist"]
    assert (wrist["residual_offset_s"].abs() > 1.5).all()
