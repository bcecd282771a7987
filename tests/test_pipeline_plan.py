"""Small core pieces the flow leans on: the model plan, run keys, quarantine manifests."""

from __future__ import annotations

import pandas as pd

from modalops import quarantine
from modalops.config import load_config
from modalops.pipeline_plan import lineage, model_plan
from modalops.runs import get_frame, new_run, put_frame, reference_stats_key


def test_model_plan_fused_first_then_one_baseline_per_modality():
    cfg = load_config(overrides=["train.modalities=[camera, audio]"]).train
    assert model_plan(cfg) == [
        ("fused", ["camera", "audio"]),
        ("camera", ["camera"]),
        ("audio", ["audio"]),
    ]
    no_baselines = cfg.model_copy(update={"baselines": False})
    assert model_plan(no_baselines) == [("fused", ["camera", "audio"])]


def test_lineage_changes_with_dataset_shaping_config_only():
    a, b = load_config(), load_config(overrides=["align.mode=none"])
    c = load_config(overrides=["train.max_epochs=1"])
    assert lineage(a) != lineage(b)
    assert lineage(a) == lineage(c)  # training settings do not make a new dataset version


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
