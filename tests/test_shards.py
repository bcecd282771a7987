"""Shards: session-level splits, content-hashed versions, exclusions, and reading back."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from modalops import schema
from modalops.config.pipeline import ShardConfig
from modalops.config.validate import ValidateConfig
from modalops.raw_layout import encode_wav
from modalops.shards import (
    DatasetManifest,
    assign_splits,
    dataset_version,
    iter_raw_samples,
    load_manifest,
    write_shards,
)
from modalops.store import LocalStore
from modalops.validation import split_label_rejections


# ---- tiny aligned-sample fixtures (also imported by the datamodule/training tests) ------------
def _jpeg(person: bool, light_on: bool, rng: np.random.Generator) -> bytes:
    img = (rng.random((64, 64, 3)) * 40 + 60).astype(np.uint8)
    if person:
        img[30:50, 10:22] = (220, 40, 40)
    if light_on:
        img[2:8, 56:62] = (40, 240, 40)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _wav(fault: bool, rng: np.random.Generator, rate: int = 16000) -> bytes:
    t = np.arange(rate) / rate
    x = 0.05 * np.sin(2 * np.pi * 120 * t) + 0.01 * rng.standard_normal(rate)
    if fault:
        x += 0.3 * np.sin(2 * np.pi * 2200 * t)
    return encode_wav(x, rate)


def _npy(fault: bool, rng: np.random.Generator) -> bytes:
    t = np.arange(100) / 100
    v = 0.05 * rng.standard_normal((100, 3)).astype(np.float32)
    v[:, 2] += 9.81
    if fault:
        v[:, 0] += 1.0 * np.sin(2 * np.pi * 7 * t)
    buf = io.BytesIO()
    np.save(buf, v.astype(np.float32))
    return buf.getvalue()


def make_rows(
    n_sessions: int = 6, windows: int = 12, seed: int = 0, sites=("A", "B")
) -> pd.DataFrame:
    """An aligned-sample table whose labels are visible in the payloads (person → camera, fault →
    audio + vibration), with a few missing modalities and one unlabelled boundary window."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        sid = f"s{s:02d}"
        for w in range(windows):
            label = schema.LABELS[(w + s) % 4]
            person = label in ("proximity", "near_miss")
            fault = label in ("fault", "near_miss")
            has = {m: True for m in schema.MODALITIES}
            if (w + 2 * s) % 7 == 3:
                has["audio"] = False
            notes = "operator checked guard" if w % 3 == 0 else ""
            has["notes"] = bool(notes)
            rows.append(
                {
                    "session_id": sid,
                    "window_index": w,
                    "t_start": float(w),
                    "t_end": float(w + 1),
                    "label": None if (s == 0 and w == windows - 1) else label,
                    "label_overlap": 1.0,
                    "boundary": bool(s == 0 and w == windows - 1),
                    **{f"has_{m}": v for m, v in has.items()},
                    "camera_jpeg": _jpeg(person, True, rng),
                    "audio_wav": _wav(fault, rng) if has["audio"] else None,
                    "vibration_npy": _npy(fault, rng),
                    "notes_text": notes,
                    "station_id": f"st{s % 2}",
                    "site": sites[0] if s < n_sessions - 2 or len(sites) == 1 else sites[1],
                    "camera_model": "cam1",
                    "microphone": "mic1",
                    "lighting": "day" if s % 2 == 0 else "night",
                    "subject": f"subj{s % 3}",
                    "align_confidence": 9.0,
                }
            )
    return pd.DataFrame(rows)


def put_parts(
    store: LocalStore, rows: pd.DataFrame, n_parts: int = 2, prefix: str = "runs/r1/aligned"
) -> list[str]:
    keys = []
    for i, chunk in enumerate(np.array_split(np.arange(len(rows)), n_parts)):
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(rows.iloc[chunk], preserve_index=False), buf)
        key = f"{prefix}/part-{i:05d}.parquet"
        store.put_bytes(key, buf.getvalue())
        keys.append(key)
    return keys


def no_rejects() -> pd.DataFrame:
    return pd.DataFrame(
        {"session_id": pd.Series(dtype="string"), "window_index": pd.Series(dtype="Int64")}
    )


# ---- tests -----------------------------------------------------------------------------------
def test_assign_splits_by_session_deterministic_and_rare_site_in_test():
    sessions = pd.DataFrame(
        {"session_id": [f"s{i:02d}" for i in range(20)], "site": ["big"] * 18 + ["rare"] * 2}
    )
    cfg = ShardConfig(val_fraction=0.15, test_fraction=0.2, seed=3)
    a = assign_splits(sessions, cfg)
    assert a == assign_splits(sessions.sample(frac=1, random_state=1), cfg)
    assert set(a) == set(sessions.session_id)
    assert set(a.values()) == set(schema.SPLITS)
    assert "test" in {a["s18"], a["s19"]}
    assert sum(v == "test" for v in a.values()) == 5  # round(18*.2)=4 + 1 rare
    assert a != assign_splits(sessions, ShardConfig(seed=4))


def test_assign_splits_small_and_too_small():
    three = pd.DataFrame({"session_id": ["a", "b", "c"], "site": ["x", "x", "x"]})
    assert sorted(assign_splits(three, ShardConfig()).values()) == ["test", "train", "val"]
    with pytest.raises(ValueError, match="at least 3 sessions"):
        assign_splits(three.iloc[:2], ShardConfig())


def test_dataset_version_is_a_content_hash():
    cfg = ShardConfig()
    assert dataset_version("abc", cfg, {}) == dataset_version("abc", ShardConfig(), {})
    assert dataset_version("abc", cfg, {}) != dataset_version("abd", cfg, {})
    assert dataset_version("abc", cfg, {}) != dataset_version(
        "abc", ShardConfig(samples_per_shard=3), {}
    )


def test_write_shards_splits_excludes_and_is_idempotent(tmp_path):
    store = LocalStore(tmp_path / "store")
    rows = make_rows()
    keys = put_parts(store, rows)
    rejected = pd.DataFrame({"session_id": ["s01", "s02"], "window_index": [3, 5]})
    cfg = ShardConfig(samples_per_shard=5, seed=1)
    m = write_shards(store, keys, rejected, cfg)

    assert store.exists(f"datasets/{m.version}/manifest.json")
    sessions = [s for info in m.splits.values() for s in info.sessions]
    assert len(sessions) == len(set(sessions)) == 6  # no session in two splits
    total = sum(info.n_samples for info in m.splits.values())
    assert total == len(rows) - 2 - 1  # two rejected, one unlabelled boundary window
    assert m.created_from["n_rejected"] == 2 and m.created_from["n_unlabelled"] == 1
    for split, info in m.splits.items():
        assert all(k.startswith(f"datasets/{m.version}/{split}-") for k in info.shards)
        assert len(info.shards) == -(-info.n_samples // 5)

    seen = {}
    for split in schema.SPLITS:
        for raw in iter_raw_samples(store, m, split):
            seen[raw["key"]] = (split, raw)
    assert len(seen) == total
    assert "s01__000003" not in seen and "s02__000005" not in seen and "s00__000011" not in seen
    split, raw = seen["s03__000002"]
    src = rows[(rows.session_id == "s03") & (rows.window_index == 2)].iloc[0]
    assert raw["camera"] == src.camera_jpeg and raw["vibration"] == src.vibration_npy
    assert raw["label"] == src.label and raw["label_index"] == schema.LABEL_INDEX[src.label]
    assert raw["meta"]["site"] == src.site and raw["meta"]["session_id"] == "s03"
    missing_audio = rows[~rows.has_audio & rows.label.notna()].iloc[0]
    key = schema.sample_key(missing_audio.session_id, int(missing_audio.window_index))
    assert seen[key][1]["audio"] is None

    # same input + config → same version, and nothing is rewritten
    mtimes = {k: (tmp_path / "store" / k).stat().st_mtime_ns for k in store.list("datasets")}
    again = write_shards(store, list(reversed(keys)), rejected, cfg)
    assert again.version == m.version
    assert {
        k: (tmp_path / "store" / k).stat().st_mtime_ns for k in store.list("datasets")
    } == mtimes
    # different rejection → different version
    assert write_shards(store, keys, no_rejects(), cfg).version != m.version


def test_label_flags_leave_the_train_split_only(tmp_path):
    """Windows the label check flagged are dropped from train; val and test keep them, so no
    score is computed on a set a model's disagreement curated (validation.label_check_drop_from)."""
    store = LocalStore(tmp_path / "store")
    rows = make_rows()
    keys = put_parts(store, rows)
    cfg = ShardConfig(samples_per_shard=5, seed=1)
    plain = write_shards(store, keys, None, cfg)
    split_of = {sid: name for name, info in plain.splits.items() for sid in info.sessions}
    labelled = rows[rows.label.notna()]
    picks = {
        name: labelled[labelled.session_id.map(split_of) == name].iloc[0]
        for name in split_of.values()
    }
    rejected = pd.DataFrame(
        {
            "session_id": [r.session_id for r in picks.values()],
            "window_index": [int(r.window_index) for r in picks.values()],
            "reason": ["label_inconsistent: given fault, out-of-fold p=0.010 (normal p=0.970)"] * 3,
        }
    )
    everywhere, train_only = split_label_rejections(rejected, ValidateConfig())
    assert everywhere.empty and len(train_only) == 3
    m = write_shards(store, keys, everywhere, cfg, train_only=train_only)
    assert m.version != plain.version
    assert m.created_from["n_rejected_from_train"] == 1 and m.created_from["n_rejected"] == 0
    kept = {raw["key"] for split in schema.SPLITS for raw in iter_raw_samples(store, m, split)}
    for name, r in picks.items():
        key = schema.sample_key(r.session_id, int(r.window_index))
        assert (key in kept) == (name != "train"), name
    assert m.splits["train"].n_samples == plain.splits["train"].n_samples - 1
    # 'all' drops them everywhere, like any other rejection
    everywhere, train_only = split_label_rejections(
        rejected, ValidateConfig(label_check_drop_from="all")
    )
    assert len(everywhere) == 3 and train_only is None
    assert (
        sum(i.n_samples for i in write_shards(store, keys, everywhere, cfg).splits.values())
        == sum(i.n_samples for i in plain.splits.values()) - 3
    )


def test_manifest_round_trip(tmp_path):
    store = LocalStore(tmp_path / "store")
    m = write_shards(
        store, put_parts(store, make_rows(n_sessions=4, windows=4)), None, ShardConfig()
    )
    loaded = load_manifest(store, m.version)
    assert loaded == m
    assert DatasetManifest.from_json(m.to_json()) == m
    assert loaded.shard_urls("train")[0] == str(tmp_path / "store" / m.splits["train"].shards[0])
    with pytest.raises(ValueError, match="not a modalops dataset manifest"):
        DatasetManifest.from_json("{}")


def test_unknown_label_names_the_part(tmp_path):
    store = LocalStore(tmp_path / "store")
    rows = make_rows(n_sessions=3, windows=3)
    rows.loc[4, "label"] = "explosion"
    with pytest.raises(ValueError, match=r"part-0000\d\.parquet.*'explosion'"):
        write_shards(store, put_parts(store, rows), None, ShardConfig())


def test_assign_splits_keeps_each_subjects_sessions_together():
    rng = np.random.default_rng(0)
    sessions = pd.DataFrame(
        {
            "session_id": [f"s{i:02d}" for i in range(30)],
            "site": rng.choice(["a", "b", "c"], 30, p=[0.45, 0.45, 0.1]),
            "subject": rng.choice([f"subj{i}" for i in range(9)], 30),
        }
    )
    split_of = assign_splits(sessions, ShardConfig())
    assert set(split_of.values()) == {"train", "val", "test"}
    per_subject = sessions.assign(split=sessions["session_id"].map(split_of)).groupby("subject")
    assert (per_subject["split"].nunique() == 1).all()
