"""Shards: spec-driven members, session-level splits, content-hashed versions, exclusions, reading back."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import shutil
import tarfile
import warnings

import numpy as np
import pandas as pd
import pytest

from modalops.config.pipeline import ShardConfig
from modalops.dataset.columns import SPLITS, payload_column, presence_column, sample_key
from modalops.shard import (
    MANIFEST_FORMAT,
    DatasetManifest,
    assign_splits,
    dataset_version,
    iter_raw_samples,
    iter_tar_samples,
    load_manifest,
    split_columns,
    write_shards,
)
from modalops.store import LocalStore
from modalops.testing.shards import (
    make_rows,
    no_rejects,
    other_spec,
    put_parts,
    write_test_shards,
)
from modalops.train.datamodule import ShardDataModule
from modalops_demo.names import demo_spec


@pytest.fixture(scope="module")
def spec():
    return demo_spec()


def test_assign_splits_by_session_deterministic_and_rare_stratum_in_test():
    sessions = pd.DataFrame(
        {"session_id": [f"s{i:02d}" for i in range(20)], "site": ["big"] * 18 + ["rare"] * 2}
    )
    cfg = ShardConfig(val_fraction=0.15, test_fraction=0.2, seed=3)
    a = assign_splits(sessions, cfg, None, "site")
    assert a == assign_splits(sessions.sample(frac=1, random_state=1), cfg, None, "site")
    assert set(a) == set(sessions.session_id)
    assert set(a.values()) == set(SPLITS)
    assert "test" in {a["s18"], a["s19"]}
    assert sum(v == "test" for v in a.values()) == 5  # round(18*.2)=4 + 1 rare
    assert a != assign_splits(sessions, ShardConfig(seed=4), None, "site")


def test_assign_splits_small_and_too_small():
    three = pd.DataFrame({"session_id": ["a", "b", "c"], "site": ["x", "x", "x"]})
    assert sorted(assign_splits(three, ShardConfig()).values()) == ["test", "train", "val"]
    with pytest.raises(ValueError, match="at least 3 sessions"):
        assign_splits(three.iloc[:2], ShardConfig())


def test_assign_splits_keeps_each_subjects_sessions_together():
    rng = np.random.default_rng(0)
    sessions = pd.DataFrame(
        {
            "session_id": [f"s{i:02d}" for i in range(30)],
            "site": rng.choice(["a", "b", "c"], 30, p=[0.45, 0.45, 0.1]),
            "subject": rng.choice([f"subj{i}" for i in range(9)], 30),
        }
    )
    split_of = assign_splits(sessions, ShardConfig(), "subject", "site")
    assert set(split_of.values()) == {"train", "val", "test"}
    per_subject = sessions.assign(split=sessions["session_id"].map(split_of)).groupby("subject")
    assert (per_subject["split"].nunique() == 1).all()


def test_split_columns_come_from_the_spec_unless_overridden(spec):
    assert split_columns(spec, ShardConfig()) == ("subject", "site")
    assert split_columns(spec, ShardConfig(stratify_by="lighting", group_by="station_id")) == (
        "station_id",
        "lighting",
    )
    other = other_spec()
    assert split_columns(other, ShardConfig()) == ("subject", "rig")
    no_roles = other.model_copy(deep=True)
    no_roles.metadata.subject, no_roles.metadata.stratify = None, None
    assert split_columns(no_roles, ShardConfig()) == (None, None)
    with pytest.raises(ValueError, match=r"shard.stratify_by='site' is not a metadata column"):
        split_columns(other, ShardConfig(stratify_by="site"))


def test_dataset_version_is_a_content_hash():
    cfg = ShardConfig()
    assert dataset_version("abc", cfg, {}) == dataset_version("abc", ShardConfig(), {})
    assert dataset_version("abc", cfg, {}) != dataset_version("abd", cfg, {})
    assert dataset_version("abc", cfg, {}) != dataset_version(
        "abc", ShardConfig(samples_per_shard=3), {}
    )
    assert dataset_version("abc", cfg, {}, spec_digest="x") != dataset_version(
        "abc", cfg, {}, spec_digest="y"
    )
    assert dataset_version("abc", cfg, {}, window_s=1.0) != dataset_version(
        "abc", cfg, {}, window_s=2.0
    )


def test_write_shards_splits_excludes_and_is_idempotent(tmp_path, spec):
    store = LocalStore(tmp_path / "store")
    rows = make_rows(spec)
    keys = put_parts(store, rows)
    rejected = pd.DataFrame({"session_id": ["s01", "s02"], "window_index": [3, 5]})
    cfg = ShardConfig(samples_per_shard=5, seed=1)
    m = write_shards(store, spec, keys, rejected, cfg, window_s=1.0)

    assert store.exists(f"datasets/{m.version}/manifest.json")
    assert m.spec == spec.to_dict() and m.spec_digest == spec.digest() and m.window_s == 1.0
    assert m.created_from["group_by"] == "subject" and m.stratify_by == "site"
    sessions = [s for info in m.splits.values() for s in info.sessions]
    assert len(sessions) == len(set(sessions)) == 6  # no session in two splits
    total = sum(info.n_samples for info in m.splits.values())
    assert total == len(rows) - 2 - 1  # two rejected, one unlabelled boundary window
    assert m.created_from["n_rejected"] == 2 and m.created_from["n_unlabelled"] == 1
    assert list(m.label_counts) == spec.labels.classes
    for split, info in m.splits.items():
        assert all(k.startswith(f"datasets/{m.version}/{split}-") for k in info.shards)
        assert len(info.shards) == -(-info.n_samples // 5)

    # members are named <key>.<stream>.<kind's ext>
    first = m.splits["train"].shards[0]
    with tarfile.open(tmp_path / "store" / first) as tar:
        suffixes = {n.split(".", 1)[1] for n in tar.getnames()}
    assert suffixes <= {"json", "camera.img", "audio.wav", "vibration.npy", "notes.txt"}
    assert {"json", "camera.img", "vibration.npy"} <= suffixes

    seen = {}
    for split in SPLITS:
        for raw in iter_raw_samples(store, m, split):
            seen[raw["key"]] = (split, raw)
    assert len(seen) == total
    assert "s01__000003" not in seen and "s02__000005" not in seen and "s00__000011" not in seen
    split, raw = seen["s03__000002"]
    src = rows[(rows.session_id == "s03") & (rows.window_index == 2)].iloc[0]
    assert set(raw["streams"]) == set(spec.stream_names)
    assert raw["streams"]["camera"] == src[payload_column("camera")]
    assert raw["streams"]["vibration"] == src[payload_column("vibration")]
    assert raw["label"] == src.label and raw["label_index"] == spec.labels.index()[src.label]
    assert raw["meta"]["site"] == src.site and raw["meta"]["session_id"] == "s03"
    assert raw["meta"]["window_index"] == 2
    missing = rows[~rows[presence_column("audio")] & rows.label.notna()].iloc[0]
    key = sample_key(missing.session_id, int(missing.window_index))
    assert seen[key][1]["streams"]["audio"] is None
    blank = rows[(rows[payload_column("notes")] == "") & rows.label.notna()].iloc[0]
    assert (
        seen[sample_key(blank.session_id, int(blank.window_index))][1]["streams"]["notes"] is None
    )
    with_text = rows[(rows[payload_column("notes")] != "") & rows.label.notna()].iloc[0]
    got = seen[sample_key(with_text.session_id, int(with_text.window_index))][1]["streams"]["notes"]
    assert got == with_text[payload_column("notes")]

    # same input + config → same version, and nothing is rewritten
    mtimes = {k: (tmp_path / "store" / k).stat().st_mtime_ns for k in store.list("datasets")}
    again = write_shards(store, spec, list(reversed(keys)), rejected, cfg, window_s=1.0)
    assert again.version == m.version
    assert {
        k: (tmp_path / "store" / k).stat().st_mtime_ns for k in store.list("datasets")
    } == mtimes
    # different rejection, window or spec → different version
    assert write_shards(store, spec, keys, no_rejects(), cfg, window_s=1.0).version != m.version
    assert write_shards(store, spec, keys, rejected, cfg, window_s=2.0).version != m.version
    renamed = spec.model_copy(deep=True)
    renamed.name = "another-name"
    assert write_shards(store, renamed, keys, rejected, cfg, window_s=1.0).version != m.version


def test_train_only_rejections_leave_the_train_split_only(tmp_path, spec):
    """Windows flagged for train only (the label check's default) are dropped from train; val and
    test keep them, so no score is computed on a set a model's disagreement curated."""
    store = LocalStore(tmp_path / "store")
    rows = make_rows(spec)
    keys = put_parts(store, rows)
    cfg = ShardConfig(samples_per_shard=5, seed=1)
    plain = write_shards(store, spec, keys, None, cfg, window_s=1.0)
    split_of = {sid: name for name, info in plain.splits.items() for sid in info.sessions}
    labelled = rows[rows.label.notna()]
    picks = {
        name: labelled[labelled.session_id.map(split_of) == name].iloc[0]
        for name in split_of.values()
    }
    train_only = pd.DataFrame(
        {
            "session_id": [r.session_id for r in picks.values()],
            "window_index": [int(r.window_index) for r in picks.values()],
        }
    )
    m = write_shards(store, spec, keys, None, cfg, train_only=train_only, window_s=1.0)
    assert m.version != plain.version
    assert m.created_from["n_rejected_from_train"] == 1 and m.created_from["n_rejected"] == 0
    kept = {raw["key"] for split in SPLITS for raw in iter_raw_samples(store, m, split)}
    for name, r in picks.items():
        key = sample_key(r.session_id, int(r.window_index))
        assert (key in kept) == (name != "train"), name
    assert m.splits["train"].n_samples == plain.splits["train"].n_samples - 1
    # the same pairs as ordinary rejections drop everywhere
    everywhere = write_shards(store, spec, keys, train_only, cfg, window_s=1.0)
    assert sum(i.n_samples for i in everywhere.splits.values()) == (
        sum(i.n_samples for i in plain.splits.values()) - 3
    )


def test_manifest_round_trip(tmp_path, spec):
    store = LocalStore(tmp_path / "store")
    keys = put_parts(store, make_rows(spec, n_sessions=4, windows=4))
    m = write_shards(store, spec, keys, None, ShardConfig(), window_s=1.0)
    loaded = load_manifest(store, m.version)
    assert loaded == m
    assert DatasetManifest.from_json(m.to_json()) == m
    assert loaded.dataset_spec() == spec
    assert loaded.dataset_spec().stream_names == spec.stream_names  # order survives the JSON
    assert loaded.shard_urls("train")[0] == str(tmp_path / "store" / m.splits["train"].shards[0])
    with pytest.raises(ValueError, match="not a modalops dataset manifest"):
        DatasetManifest.from_json("{}")
    old = m.to_json().replace(f'"format": "{MANIFEST_FORMAT}"', '"format": "modalops.dataset/1"')
    with pytest.raises(ValueError, match="format 'modalops.dataset/1'"):
        DatasetManifest.from_json(old)
    unchecked = m.to_json().replace('"shard_checks": {', '"no_checks": {', 1)
    with pytest.raises(ValueError, match="not a modalops dataset manifest"):
        DatasetManifest.from_json(unchecked)


def test_unknown_label_names_the_part_and_the_classes(tmp_path, spec):
    store = LocalStore(tmp_path / "store")
    rows = make_rows(spec, n_sessions=3, windows=3)
    rows.loc[4, "label"] = "explosion"
    with pytest.raises(ValueError, match=r"part-0000\d\.parquet.*'explosion'.*labels.classes"):
        write_shards(store, spec, put_parts(store, rows), None, ShardConfig(), window_s=1.0)


def test_a_non_demo_spec_shards_by_its_own_names(tmp_path):
    other = other_spec()
    store = LocalStore(tmp_path / "store")
    rows = make_rows(other, n_sessions=6, windows=6, strata=("rig_a", "rig_b"))
    m = write_shards(store, other, put_parts(store, rows), None, ShardConfig(), window_s=1.0)
    assert list(m.label_counts) == ["rest", "reach", "grasp"]
    assert m.stratify_by == "rig" and set(m.splits["train"].group_counts) == {"rig"}
    assert load_manifest(store, m.version).dataset_spec().stream_names == other.stream_names
    raw = next(iter_raw_samples(store, m, "train"))
    assert list(raw["streams"]) == ["top_cam", "side_cam", "wrist_imu", "remarks"]
    assert set(raw["meta"]) == {"rig", "operator_shift", "subject", "session_id", "window_index"}
    with tarfile.open(tmp_path / "store" / m.splits["train"].shards[0]) as tar:
        suffixes = {n.split(".", 1)[1] for n in tar.getnames()}
    assert {"top_cam.img", "wrist_imu.npy"} <= suffixes


@pytest.mark.parametrize("name", ["../evil.json", "dir/key.json", ".hidden.json"])
def test_tar_members_must_be_plain_names(name):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    buf.seek(0)
    with pytest.raises(ValueError, match="is not a plain '<key>.<suffix>' name"):
        list(iter_tar_samples(buf, "mem://bad.tar"))


# ---- shards checked against the manifest (issue 23) -------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory, spec):
    """A small dataset version: (store root, manifest); tests damage copies of it."""
    root = tmp_path_factory.mktemp("checked")
    return root, write_test_shards(LocalStore(root), spec, n_sessions=4, windows=6)


def _copy(written, tmp_path) -> tuple[LocalStore, DatasetManifest]:
    root, m = written
    shutil.copytree(root, tmp_path / "copy")
    return LocalStore(tmp_path / "copy"), dataclasses.replace(m, store_uri=str(tmp_path / "copy"))


def test_the_manifest_records_what_each_shard_holds_and_clean_shards_read_so(written):
    root, m = written
    assert m.format == MANIFEST_FORMAT
    for split, info in m.splits.items():
        assert set(info.shard_checks) == set(info.shards)
        assert sum(c.n_samples for c in info.shard_checks.values()) == info.n_samples
        for key, check in info.shard_checks.items():
            data = (root / key).read_bytes()
            assert (check.n_bytes, check.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert len(list(iter_raw_samples(LocalStore(root), m, split))) == info.n_samples
    assert DatasetManifest.from_json(m.to_json()).shard_checks() == m.shard_checks()
    assert set(m.shard_checks()) == {u for s in SPLITS for u in m.shard_urls(s)}


def _rewrite_tar(path, keep) -> None:
    """Rewrite a tar with the members `keep(members)` returns: a tar cut at a member boundary."""
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(path, "w") as tar:
        for member, data in keep(members):
            tar.addfile(member, io.BytesIO(data))


def _drop_last_sample(members):
    last = members[-1][0].name.split(".", 1)[0]
    return [(m, d) for m, d in members if not m.name.startswith(last + ".")]


def _flip_a_byte(path) -> None:
    """Flip one byte inside the data of the shard's last member (its header stays valid)."""
    with tarfile.open(path) as tar:
        last = tar.getmembers()[-1]
    data = bytearray(path.read_bytes())
    data[last.offset_data + last.size // 2] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE = {
    "last member dropped": lambda p: _rewrite_tar(p, lambda members: members[:-1]),
    "last sample dropped": lambda p: _rewrite_tar(p, _drop_last_sample),
    "one byte flipped": _flip_a_byte,
}


def _read_raw(store, m, split, tmp_path):
    return len(list(iter_raw_samples(store, m, split)))


def _read_loader(store, m, split, tmp_path, **kwargs):
    dm = ShardDataModule.from_manifest(m, batch_size=4, **kwargs)
    return sum(len(y) for _, _, y in getattr(dm, f"{split}_dataloader")())


def _read_cached(store, m, split, tmp_path):
    return _read_loader(store, m, split, tmp_path, decode_cache_dir=str(tmp_path / "decoded"))


READERS = {"iter_raw_samples": _read_raw, "DataModule": _read_loader, "decode cache": _read_cached}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_shard_is_an_error_naming_it_through_every_reader(
    written, tmp_path, damage, reader
):
    """Never a quietly smaller epoch: the shard is named with the counts found and expected."""
    store, m = _copy(written, tmp_path)
    key = m.splits["train"].shards[-1]
    path = tmp_path / "copy" / key
    with path.open("rb") as fh:
        expected = sum(1 for _ in iter_tar_samples(fh, key))
    DAMAGE[damage](path)
    found = expected - 1 if damage == "last sample dropped" else expected
    url = re.escape(store.uri(key))
    with pytest.raises(
        ValueError,
        match=rf"^{url}: shard does not match the dataset manifest \(.*\): found {found} "
        rf"samples, .* expected {expected} samples",
    ):
        READERS[reader](store, m, "train", tmp_path)
    # the other splits are whole and read in full
    assert READERS[reader](store, m, "val", tmp_path) == m.splits["val"].n_samples


def test_a_manifest_without_shard_checks_still_loads_with_one_warning(written, tmp_path):
    """Format /2 manifests (before the checks) load and read as before, unchecked, said once."""
    store, m = _copy(written, tmp_path)
    doc = json.loads(m.to_json())
    doc.update(format="modalops.shards/2", version="v-older-format")
    for info in doc["splits"].values():
        del info["shard_checks"]
    with pytest.warns(UserWarning, match="v-older-format has manifest format 'modalops.shards/2'"):
        old = DatasetManifest.from_json(json.dumps(doc))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per version: no second warning
        assert DatasetManifest.from_json(old.to_json()) == old
    assert old.shard_checks() == {} and old.splits["train"].n_samples == m.splits["train"].n_samples
    _rewrite_tar(tmp_path / "copy" / m.splits["train"].shards[-1], _drop_last_sample)
    # nothing to compare with: it reads short, as every version before format /3 did
    assert len(list(iter_raw_samples(store, old, "train"))) < m.splits["train"].n_samples
