"""Small core pieces the flow leans on: the model plan, run keys, quarantine manifests."""

from __future__ import annotations

import pandas as pd
import pytest

from modalops import quarantine
from modalops.config import ConfigError, load_config
from modalops.pipeline_plan import check_config_against_spec, lineage, model_plan
from modalops.runs import get_frame, new_run, put_frame, reference_stats_key
from modalops_demo.names import demo_spec


def test_model_plan_fused_first_then_one_baseline_per_stream():
    spec = demo_spec()
    cfg = load_config(overrides=["train.streams=[camera, audio]"]).train
    assert model_plan(spec, cfg) == [
        ("fused", ["camera", "audio"]),
        ("camera", ["camera"]),
        ("audio", ["audio"]),
    ]
    no_baselines = cfg.model_copy(update={"baselines": False})
    assert model_plan(spec, no_baselines) == [("fused", ["camera", "audio"])]
    every = model_plan(spec, load_config().train)
    assert every[0] == ("fused", spec.stream_names) and len(every) == 1 + len(spec.streams)


def test_lineage_changes_with_dataset_shaping_config_and_spec_only():
    spec = demo_spec()
    a, b = load_config(), load_config(overrides=["align.mode=none"])
    c = load_config(overrides=["train.max_epochs=1"])
    assert lineage(a, spec) != lineage(b, spec)
    assert lineage(a, spec) == lineage(c, spec)  # training settings make no new dataset version
    other = spec.model_copy(deep=True)
    other.labels.classes = [*other.labels.classes, "extra"]
    assert lineage(a, spec) != lineage(a, other)


def test_config_names_are_checked_against_the_spec():
    spec = demo_spec()
    cfg = load_config(overrides=["train.streams=[camera, lidar]", "evaluate.slices=[room]"])
    with pytest.raises(ConfigError) as err:
        check_config_against_spec(cfg, spec)
    assert "train.streams: ['lidar'] are not streams" in str(err.value)
    assert "evaluate.slices: ['room'] are not metadata columns" in str(err.value)
    check_config_against_spec(load_config(), spec)  # the defaults fit any spec


def test_runs_are_unique_and_frames_round_trip(tmp_path):
    cfg = load_config(overrides=[f"store.uri={tmp_path}"])
    one, two = new_run(cfg.store, "flow-1"), new_run(cfg.store)
    assert one.run_key != two.run_key and one.prefix.startswith("runs/")
    df = pd.DataFrame({"a": [1, 2]})
    put_frame(one.store(), one.key("x.parquet"), df)
    assert get_frame(one.store(), one.key("x.parquet")).equals(df)
    assert reference_stats_key("v-1") == "datasets/v-1/reference_stats.parquet"


def test_quarantine_manifest_columns_and_concat():
    empty = quarantine.to_frame([])
    assert list(empty.columns) == list(quarantine.QUARANTINE_COLUMNS) and empty.empty
    rec = quarantine.QuarantineRecord("ingest", "s1", "audio", "/x/audio.wav", "truncated WAV")
    both = quarantine.concat(quarantine.to_frame([rec]), empty, quarantine.to_frame([rec]))
    assert len(both) == 2 and both["window_index"].isna().all()
