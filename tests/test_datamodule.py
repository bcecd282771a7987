"""DataModule: reads local shards through the product pipeline; ranks and workers split exactly."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest
import torch

from modalops.store import LocalStore
from modalops.testing.shards import other_spec, write_test_shards
from modalops.train.datamodule import SampleWeights, ShardDataModule, ShardStream
from modalops_demo.names import demo_spec


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("store"))
    return write_test_shards(store, demo_spec(), windows=10, samples_per_shard=4)


def _stream(manifest, urls, n, **kwargs) -> ShardStream:
    return ShardStream(urls, n, spec=manifest.dataset_spec(), window_s=manifest.window_s, **kwargs)


def _labels_by_key(stream: ShardStream) -> list[int]:
    return [label for _, _, label in stream]


def test_batches_have_fixed_shapes(manifest):
    dm = ShardDataModule.from_manifest(manifest, batch_size=5)
    inputs, presence, target = next(iter(dm.train_dataloader()))
    assert inputs["camera"].shape == (5, 3, 64, 64)
    assert inputs["audio"].shape == (5, 64, 65)
    assert inputs["vibration"].shape == (5, 3, 100)
    assert inputs["notes"].shape == (5, 256)
    assert presence.shape == (5, 4) and target.dtype == torch.long
    assert set(target.tolist()) <= set(range(4))


def test_shapes_follow_a_non_demo_spec(tmp_path):
    store = LocalStore(tmp_path / "store")
    m = write_test_shards(store, other_spec(), windows=6, window_s=2.0)
    inputs, presence, target = next(
        iter(ShardDataModule.from_manifest(m, batch_size=4).val_dataloader())
    )
    assert inputs["top_cam"].shape == inputs["side_cam"].shape == (4, 1, 32, 32)
    assert inputs["wrist_imu"].shape == (4, 6, 100)  # 50 Hz x 2 s windows
    assert inputs["remarks"].shape == (4, 64)
    assert presence.shape == (4, 4) and set(target.tolist()) <= {0, 1, 2}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_workers_cover_every_sample_exactly_once(manifest, tmp_path, num_workers):
    log = tmp_path / "log"
    dm = ShardDataModule.from_manifest(
        manifest, batch_size=3, num_workers=num_workers, shard_log=str(log)
    )
    n = 0
    counts = Counter()
    for _, _, target in dm.train_dataloader():
        n += len(target)
        counts.update(target.tolist())
    info = manifest.splits["train"]
    assert n == info.n_samples
    index = manifest.dataset_spec().labels.index()
    assert counts == Counter({index[k]: v for k, v in info.label_counts.items() if v})
    opened = [json.loads(line) for line in (log / "rank0.jsonl").read_text().splitlines()]
    assert sorted(o["url"] for o in opened) == sorted(manifest.shard_urls("train"))
    if num_workers == 2:
        assert {o["worker"] for o in opened} == {0, 1}


def test_ranks_read_disjoint_shards_with_equal_counts(manifest, tmp_path):
    urls = manifest.shard_urls("train")
    n = manifest.splits["train"].n_samples
    seen = []
    for rank in range(2):
        stream = _stream(
            manifest,
            urls,
            n,
            shuffle=True,
            seed=1,
            rank=rank,
            world_size=2,
            shard_log=str(tmp_path),
        )
        seen.append(len(_labels_by_key(stream)))
    assert seen[0] == seen[1] == -(-n // 2)
    opened = [
        {json.loads(line)["url"] for line in (tmp_path / f"rank{r}.jsonl").read_text().splitlines()}
        for r in range(2)
    ]
    assert opened[0] and opened[1] and not opened[0] & opened[1]
    assert opened[0] | opened[1] == set(urls)


def test_sample_level_split_when_too_few_shards(manifest):
    url = manifest.shard_urls("val")[:1]
    every = [label for _, _, label in _stream(manifest, url, None, shuffle=False)]
    halves = [
        _labels_by_key(_stream(manifest, url, len(every), shuffle=False, rank=r, world_size=2))
        for r in range(2)
    ]
    assert len(halves[0]) == len(halves[1]) == -(-len(every) // 2)
    # rank 0 holds positions 0, 2, 4, ...; rank 1 holds 1, 3, ... then repeats to match the count
    assert sorted(halves[0] + halves[1][: len(every) // 2]) == sorted(every)
    assert halves[0] == every[0::2] and halves[1][: len(every) // 2] == every[1::2]


def test_epoch_changes_shuffle_but_seed_fixes_it(manifest):
    urls, n = manifest.shard_urls("train"), manifest.splits["train"].n_samples

    def order(epoch, seed=0):
        s = _stream(manifest, urls, n, shuffle=True, seed=seed, epoch=epoch, shuffle_buffer=8)
        return [p.sum().item() + 10 * y for _, p, y in s]

    assert order(0) == order(0)
    assert order(0) != order(1)
    assert sorted(order(0)) == sorted(order(1))


def test_weighted_sampling_shifts_the_class_mix(manifest):
    urls, n = manifest.shard_urls("train"), manifest.splits["train"].n_samples
    w = SampleWeights("label", {"normal": 1.0, "proximity": 0.05, "fault": 0.05, "near_miss": 0.05})
    labels = _labels_by_key(_stream(manifest, urls, n, shuffle=True, seed=3, weights=w))
    assert len(labels) == n
    assert Counter(labels)[0] > 0.6 * n  # 'normal' is ~1/4 of the data, ~87% after weighting


def test_missing_split_is_named(manifest):
    dm = ShardDataModule(
        {"train": manifest.shard_urls("train")}, manifest.dataset_spec(), manifest.window_s
    )
    with pytest.raises(KeyError, match="no shards for split 'val'"):
        dm.val_dataloader()


# ---- decode once ---------------------------------------------------------------------------


def _epoch_batches(manifest, epoch, cache=None, streams=None, num_workers=0, urls=None):
    dm = ShardDataModule.from_manifest(
        manifest,
        batch_size=5,
        decode_cache_dir=None if cache is None else str(cache),
        streams=streams,
        num_workers=num_workers,
    )
    if urls is not None:
        dm.urls = urls
    dm.epoch = epoch
    return list(dm.train_dataloader())


def _assert_same_batches(a, b):
    assert len(a) == len(b) > 0
    for (in_a, pres_a, y_a), (in_b, pres_b, y_b) in zip(a, b, strict=True):
        assert torch.equal(y_a, y_b) and torch.equal(pres_a, pres_b)
        assert in_a.keys() == in_b.keys()
        for name in in_a:
            assert torch.equal(in_a[name], in_b[name]), name


@pytest.mark.parametrize("num_workers", [0, 2])
def test_decode_cache_gives_the_same_batches_and_reads_no_tar_once_warm(
    manifest, tmp_path, num_workers
):
    """Cold (decoding) and warm (cache) epochs yield exactly the batches of the decoding path;
    once warm, the shards themselves are not read: a copy whose tars are gone still trains."""
    cache = tmp_path / "decoded"
    for epoch in (0, 1):
        plain = _epoch_batches(manifest, epoch, num_workers=num_workers)
        _assert_same_batches(plain, _epoch_batches(manifest, epoch, cache, num_workers=num_workers))
        _assert_same_batches(plain, _epoch_batches(manifest, epoch, cache, num_workers=num_workers))
    assert list(cache.glob("*/*/light.json"))
    # warm the cache from copies of the shards, delete the copies: the same URLs still read
    copies = tmp_path / "copies"
    copies.mkdir()
    urls = []
    for url in manifest.shard_urls("train"):
        urls.append(str(shutil.copy(url, copies)))
    plain = _epoch_batches(manifest, 0, num_workers=num_workers)
    _assert_same_batches(
        plain, _epoch_batches(manifest, 0, cache, num_workers=num_workers, urls={"train": urls})
    )
    shutil.rmtree(copies)
    with pytest.raises(FileNotFoundError, match="copies"):  # without the cache they are gone
        _epoch_batches(manifest, 0, urls={"train": urls})
    warm = _epoch_batches(manifest, 0, cache, num_workers=num_workers, urls={"train": urls})
    _assert_same_batches(plain, warm)


def test_a_single_stream_model_reuses_what_the_fused_model_decoded(manifest, tmp_path):
    cache = tmp_path / "decoded"
    _epoch_batches(manifest, 0, cache)  # every stream decoded and cached
    arrays = sorted(p.name for p in cache.glob("*/*/*.npy"))
    only = _epoch_batches(manifest, 0, cache, streams=["vibration"])
    assert sorted(p.name for p in cache.glob("*/*/*.npy")) == arrays  # nothing decoded again
    _assert_same_batches(_epoch_batches(manifest, 0, streams=["vibration"]), only)
    assert only[0][0]["camera"].abs().sum() == 0  # streams a model does not use stay zeros


def test_a_damaged_cache_entry_is_decoded_again(manifest, tmp_path):
    cache = tmp_path / "decoded"
    plain = _epoch_batches(manifest, 0)
    _epoch_batches(manifest, 0, cache)
    for npy in cache.glob("*/*/*.npy"):
        npy.write_bytes(npy.read_bytes()[:100])  # truncated
    _assert_same_batches(plain, _epoch_batches(manifest, 0, cache))
    (next(cache.glob("*/*/light.json"))).write_text("{not json")
    _assert_same_batches(plain, _epoch_batches(manifest, 0, cache))


def test_the_decode_cache_stays_under_its_size_limit(manifest, tmp_path):
    cache = tmp_path / "decoded"
    dm = ShardDataModule.from_manifest(
        manifest,
        batch_size=5,
        decode_cache_dir=str(cache),
        decode_cache_gb=1e-4,  # 100 kB
    )
    batches = list(dm.train_dataloader())
    _assert_same_batches(_epoch_batches(manifest, 0), batches)
    size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    one_entry = max(sum(f.stat().st_size for f in entry.iterdir()) for entry in cache.glob("*/*"))
    assert size <= 1e5 + one_entry  # only the newest entry may overshoot the limit
    assert len(list(cache.glob("*/*/light.json"))) < len(manifest.shard_urls("train"))


def test_a_cached_sample_holds_only_its_own_row(manifest, tmp_path):
    """A sample waiting in the shuffle buffer must not keep its whole shard's arrays alive (a
    view would: the buffer then held the arrays of the last dozen shards, ~85 MB more at the
    default 256-sample shards and 512-sample buffer, benchmarks/cost_growth.py)."""
    cache = tmp_path / "decoded"
    urls = manifest.shard_urls("train")
    stream = _stream(manifest, urls, None, shuffle=True, decode_cache_dir=str(cache))
    for warm in (False, True):  # decoded now, then read back from the cache
        samples = list(stream)
        assert len(samples) == manifest.splits["train"].n_samples
        for tensors, _, _ in samples:
            for name, tensor in tensors.items():
                own = tensor.numel() * tensor.element_size()
                assert tensor.untyped_storage().nbytes() == own, (name, warm)
        assert list(cache.glob("*/*/light.json"))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stream_made_batches_equal_the_dataloaders_own_batching(manifest, num_workers):
    """The stream collates its batches ahead in a thread; they are exactly the batches a
    DataLoader makes from the same samples (per loader worker, the last one smaller)."""
    from torch.utils.data import DataLoader

    from modalops.train.datamodule import _collate

    dm = ShardDataModule.from_manifest(manifest, batch_size=3, num_workers=num_workers)
    ours = list(dm.train_dataloader())
    samples = dm.stream("train", train=True)
    samples.yield_batches = False
    theirs = list(DataLoader(samples, batch_size=3, num_workers=num_workers, collate_fn=_collate))
    _assert_same_batches(theirs, ours)
