"""Streams WebDataset shards (local or s3://) into batches, split across DDP ranks and loader workers.

Splitting (issue 2, train): the shard list is shuffled with (seed, epoch), rank r of W takes shards
r, r+W, ... and loader worker k of K takes every K-th of those, so ranks read disjoint shards.
When there are fewer shards than W·K, every reader opens every shard and keeps every (W·K)-th
sample instead (sample-level splitting; still disjoint, just more bytes read) — small validation
splits hit this. Under DDP (or weighted sampling) each reader cycles its share until it has
yielded exactly its quota, quota = ceil(n_split / W) spread evenly over workers, so every rank
sees the same number of batches and DDP never waits on a rank that ran out (a few samples repeat
per epoch instead). One unweighted process reads every sample exactly once.

Resume: the order is a function of (seed, epoch, rank, worker) only, so a restarted epoch yields
the same samples; `skip_batches` drops the batches the interrupted run already trained on
(without decoding them), since Lightning restores its batch counter but cannot fast-forward
an iterable dataset.

Decode once (`decode_cache_dir`): each shard a reader opens is decoded whole, once per machine,
into `modalops.train.decoded_cache`; later epochs and other models over the same shards read the
decoded tensors. The order of samples, and so every batch, is the same with or without it.
Shards still to be read from the store are fetched whole, one ahead, in a background thread, so
the next download overlaps this shard's decoding.

Checked shards (`shard_checks`, from the manifest): a fetched shard's size and sha256 must be
those it was written with before any of its samples is decoded, so a truncated or changed shard
stops the run naming it instead of making a quietly smaller epoch (issue 23).
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import queue
import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from modalops.dataset.spec import DatasetSpec
from modalops.shard import (
    DatasetManifest,
    SampleReader,
    ShardCheck,
    check_shard_bytes,
    iter_tar_samples,
)
from modalops.store import read_stream
from modalops.train.decoded_cache import DecodedCache, DecodedSample
from modalops.train.inputs import spec_codecs


@dataclass(frozen=True)
class SampleWeights:
    """Weighted sampling: a sample whose `field` ('label' or a metadata column, e.g. the spec's
    stratify column) has value v is kept with chance weights[v] / max(weights) (rejection sampling on the stream)."""

    field: str
    weights: dict[str, float]

    def keep_probability(self, label: str, meta: Mapping[str, Any]) -> float:
        value = label if self.field == "label" else meta.get(self.field)
        top = max(self.weights.values())
        return self.weights.get(str(value), top) / top if top > 0 else 1.0


class _Lazy:
    """A raw sample from a tar, decoded only if it is yielded (not when a resume skips it)."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]):
        self.raw = raw

    @property
    def label(self) -> str:
        return self.raw["label"]

    @property
    def meta(self) -> dict[str, Any]:
        return self.raw["meta"]


class _FetchAhead:
    """Whole shards fetched in a background thread, one ahead of the one being read (a shard is
    `shard.samples_per_shard` samples, so at most two are held in memory)."""

    def __init__(self, urls: Sequence[str], endpoint_url: str | None):
        self.urls, self.endpoint_url = list(urls), endpoint_url
        self.next = 0
        self.pending: dict[str, Future] = {}
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="modalops-fetch") if urls else None
        self._submit()

    def _read(self, url: str) -> bytes:
        with read_stream(url, self.endpoint_url) as stream:
            return stream.read()

    def _submit(self) -> None:
        if self.pool is not None and self.next < len(self.urls):
            url = self.urls[self.next]
            self.pending[url] = self.pool.submit(self._read, url)
            self.next += 1

    def get(self, url: str) -> bytes:
        """The shard's bytes: the prefetched ones, else read now (a cache entry found damaged)."""
        future = self.pending.pop(url, None)
        if future is None:
            return self._read(url)
        self._submit()
        return future.result()

    def __enter__(self) -> _FetchAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


_DONE = object()


def _batched(samples: Iterator[Any], size: int) -> Iterator[Any]:
    """Collated batches of `size` consecutive samples; the last one may be smaller."""
    batch: list[Any] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == size:
            yield _collate(batch)
            batch = []
    if batch:
        yield _collate(batch)


def _as_is(batch: Any) -> Any:
    return batch


def _ahead(source: Iterator[Any], depth: int) -> Iterator[Any]:
    """Items of `source` produced in a daemon thread, up to `depth` ahead; an error in the
    thread is raised here; closing this generator stops the thread."""
    items: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    break
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised in its thread
            put(exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="modalops-samples", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _worker_context() -> multiprocessing.context.BaseContext:
    """The forkserver context, its server preloading torch and this module, so that starting
    a loader's workers (every epoch) costs a fork, not a fresh interpreter importing torch."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", __name__])  # no effect once the server runs
    return context


def _collate(items: list[tuple[dict[str, torch.Tensor], torch.Tensor, int]]):
    inputs = {s: torch.stack([it[0][s] for it in items]) for s in items[0][0]}
    presence = torch.stack([it[1] for it in items])
    target = torch.tensor([it[2] for it in items], dtype=torch.long)
    return inputs, presence, target


class ShardStream(IterableDataset):
    """One split's shards as a stream of (inputs, presence, label_index) for one rank."""

    def __init__(
        self,
        urls: Sequence[str],
        n_samples: int | None,
        *,
        spec: DatasetSpec,
        window_s: float,
        shuffle: bool,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        endpoint_url: str | None = None,
        shuffle_buffer: int = 256,
        weights: SampleWeights | None = None,
        shard_log: str | None = None,
        split: str = "",
        streams: Sequence[str] | None = None,
        skip_batches: int = 0,
        batch_size: int = 1,
        decode_cache_dir: str | None = None,
        decode_cache_gb: float = 8.0,
        yield_batches: bool = False,
        shard_checks: Mapping[str, ShardCheck] | None = None,
    ):
        super().__init__()
        if not urls:
            raise ValueError("ShardStream: the split has no shards (was it written empty?)")
        if weights is not None and n_samples is None:
            raise ValueError("ShardStream: weighted sampling needs the split's sample count")
        self.urls = list(urls)
        self.n_samples = n_samples
        self.shuffle, self.seed, self.epoch = shuffle, seed, epoch
        self.rank, self.world_size = rank, world_size
        self.endpoint_url = endpoint_url
        self.shuffle_buffer = shuffle_buffer
        self.weights = weights
        self.shard_log = shard_log
        self.split = split
        self.spec, self.window_s = spec, float(window_s)
        self.streams = tuple(streams) if streams else None  # decode only these
        self.skip_batches, self.batch_size = skip_batches, batch_size
        self.decode_cache_dir, self.decode_cache_gb = decode_cache_dir, decode_cache_gb
        self.yield_batches = yield_batches
        self.shard_checks = dict(shard_checks or {})  # url -> what the shard held when written
        unknown = [x for x in (self.streams or ()) if x not in spec.streams]
        if unknown:
            raise ValueError(f"streams {unknown} are not in dataset spec {spec.name!r}")

    def rank_quota(self) -> int | None:
        """Samples each rank yields per epoch (equal across ranks), or None to read each sample
        exactly once (one process, unweighted: evaluation must see every sample once)."""
        if self.n_samples is None or (self.world_size == 1 and self.weights is None):
            return None
        return -(-self.n_samples // self.world_size)

    def _reader(self) -> tuple[int, int]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        return worker, workers

    def _items(self, cycle: int, reader: int, readers: int, shard_level: bool) -> Iterator[Any]:
        """The reader's samples in its shard order: `_Lazy` raw samples, or `DecodedSample`s
        from the decode cache."""
        urls = list(self.urls)
        if self.shuffle:  # the partition changes per epoch, never within one (ranks stay disjoint)
            random.Random(f"{self.seed}:{self.epoch}").shuffle(urls)
        mine = urls[reader::readers] if shard_level else urls
        if self.shuffle and cycle:
            random.Random(f"{self.seed}:{self.epoch}:{cycle}").shuffle(mine)
        to_raw = SampleReader(self.spec)
        cache = self._cache()
        share = None if shard_level else (reader, readers)

        def raws(url: str, data: bytes) -> Iterator[dict]:
            check_shard_bytes(data, url, self.shard_checks.get(url))
            for i, sample in enumerate(iter_tar_samples(io.BytesIO(data), url)):
                # sample-level splitting counts positions per shard, the same on every reader
                if shard_level or i % readers == reader:
                    yield to_raw(sample)

        wanted = list(self.streams or self.spec.stream_names)
        # the shards to read from the store (not whole in the decode cache) are fetched one
        # ahead in a thread: the next shard downloads while this one is decoded
        checks = self.shard_checks
        fetch = [u for u in mine if cache is None or not cache.has(u, share, wanted, checks.get(u))]
        with _FetchAhead(fetch, self.endpoint_url) as ahead:
            for url in mine:
                self._log_open(url)  # from the tar or from the decode cache: this reader's shard
                if cache is None:
                    yield from map(_Lazy, raws(url, ahead.get(url)))
                else:
                    yield from cache.samples(
                        url, share, wanted, lambda u=url: raws(u, ahead.get(u)), checks.get(url)
                    )

    def _cache(self) -> DecodedCache | None:
        if not self.decode_cache_dir:
            return None
        return DecodedCache(
            self.decode_cache_dir,
            spec_codecs(self.spec, self.window_s),
            self.spec.digest(),
            self.decode_cache_gb,
        )

    def _log_open(self, url: str) -> None:
        if not self.shard_log:
            return
        worker, _ = self._reader()
        path = Path(self.shard_log) / f"rank{self.rank}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:  # one short line per open; appends from workers don't interleave
            fh.write(
                json.dumps(
                    {
                        "rank": self.rank,
                        "worker": worker,
                        "epoch": self.epoch,
                        "split": self.split,
                        "url": url,
                    }
                )
                + "\n"
            )

    def __iter__(self):
        """The rank's (and loader worker's) samples, made one batch or more ahead in a
        background thread: reading and assembling the next batch overlaps the training step
        (the thread holds the GIL only between torch calls). Same samples, same order. With
        `yield_batches` it yields collated batches of `batch_size` (the last one smaller),
        collated in that thread too, exactly the batches a DataLoader would make."""
        if self.yield_batches:
            return _ahead(_batched(self._samples(), self.batch_size), 2)
        return _ahead(self._samples(), 2 * self.batch_size)

    def _samples(self):
        worker, workers = self._reader()
        readers = self.world_size * workers
        reader = self.rank * workers + worker
        shard_level = len(self.urls) >= readers
        if shard_level:
            # worker k of rank r reads shards r + W·k', ... : ranks split first, then workers
            reader = worker * self.world_size + self.rank
        quota = self.rank_quota()
        if quota is not None:
            quota = quota // workers + (1 if worker < quota % workers else 0)
        rng = random.Random(f"{self.seed}:{self.epoch}:{self.rank}:{worker}")
        # the DataLoader takes batches from its workers in turn: worker w made batches w, w+K, ...
        skip = len(range(worker, self.skip_batches, workers)) * self.batch_size
        buffer: list[dict] = []
        produced = 0
        cycle = 0
        while quota is None or produced < quota:
            got_any = False
            for raw in self._items(cycle, reader, readers, shard_level):
                got_any = True
                if self.weights is not None and rng.random() >= self.weights.keep_probability(
                    raw.label, raw.meta
                ):
                    continue
                if self.shuffle:
                    buffer.append(raw)
                    if len(buffer) < self.shuffle_buffer:
                        continue
                    raw = buffer.pop(rng.randrange(len(buffer)))
                if produced >= skip:
                    yield self._tensors(raw)
                produced += 1
                if quota is not None and produced >= quota:
                    return
            if not got_any:
                if quota:  # a reader with no samples cannot meet its quota: say so, do not hang
                    raise ValueError(
                        f"rank {self.rank} worker {worker} got no samples from {len(self.urls)} shard(s); "
                        "use fewer dataloader workers or write smaller shards"
                    )
                return
            cycle += 1
            if quota is None:
                break
        rng.shuffle(buffer)
        for raw in buffer:
            if quota is not None and produced >= quota:
                return
            if produced >= skip:
                yield self._tensors(raw)
            produced += 1

    def _tensors(self, item: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor, int]:
        if isinstance(item, DecodedSample):
            return item.tensors, item.presence, item.label_index
        codecs = spec_codecs(self.spec, self.window_s)
        tensors, presence = codecs(item.raw["streams"], self.streams)
        return tensors, presence, item.raw["label_index"]


class ShardDataModule(pl.LightningDataModule):
    """Train/val/test loaders over shard URL lists; knows nothing of stores or orchestration."""

    def __init__(
        self,
        urls: Mapping[str, Sequence[str]],
        spec: DatasetSpec,
        window_s: float,
        batch_size: int = 64,
        num_workers: int = 0,
        endpoint_url: str | None = None,
        sizes: Mapping[str, int] | None = None,
        seed: int = 0,
        shuffle_buffer: int = 256,
        weights: SampleWeights | None = None,
        shard_log: str | None = None,
        streams: Sequence[str] | None = None,
        decode_cache_dir: str | None = None,
        decode_cache_gb: float = 8.0,
        shard_checks: Mapping[str, ShardCheck] | None = None,
    ):
        super().__init__()
        self.urls = {k: list(v) for k, v in urls.items()}
        self.spec, self.window_s = spec, float(window_s)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        self.sizes = dict(sizes or {})
        self.seed, self.shuffle_buffer = seed, shuffle_buffer
        self.weights = weights
        self.shard_log = shard_log
        self.streams = list(streams) if streams else None  # decode only these
        self.decode_cache_dir, self.decode_cache_gb = decode_cache_dir, decode_cache_gb
        self.shard_checks = dict(shard_checks or {})
        self.epoch = 0  # used when no trainer is attached (plain iteration in tests)
        # (epoch, batches): set on a mid-epoch resume by training's ResumeCheckpoints callback
        self.resume_skip: tuple[int, int] = (-1, 0)

    @classmethod
    def from_manifest(cls, manifest: DatasetManifest, **kwargs: Any) -> ShardDataModule:
        """Loaders over a dataset version, decoding with the spec and window in its manifest and
        checking each shard against it."""
        urls = {s: manifest.shard_urls(s) for s in manifest.splits if manifest.splits[s].shards}
        sizes = {s: manifest.splits[s].n_samples for s in urls}
        return cls(
            urls,
            manifest.dataset_spec(),
            manifest.window_s,
            sizes=sizes,
            shard_checks=manifest.shard_checks(),
            **kwargs,
        )

    def _placement(self) -> tuple[int, int, int]:
        trainer = self.trainer
        if trainer is not None:
            return trainer.global_rank, trainer.world_size, trainer.current_epoch
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size(), self.epoch
        return 0, 1, self.epoch

    def _resume_skip(self) -> int:
        """Training batches of the current epoch already done by the run this one resumes."""
        epoch, batches = self.resume_skip
        return batches if self._placement()[2] == epoch else 0

    def stream(self, split: str, train: bool) -> ShardStream:
        if split not in self.urls:
            raise KeyError(f"no shards for split {split!r} (have {sorted(self.urls)})")
        rank, world, epoch = self._placement()
        return ShardStream(
            self.urls[split],
            self.sizes.get(split),
            spec=self.spec,
            window_s=self.window_s,
            shuffle=train,
            seed=self.seed,
            epoch=epoch,
            rank=rank,
            world_size=world,
            endpoint_url=self.endpoint_url,
            shuffle_buffer=self.shuffle_buffer,
            weights=self.weights if train else None,
            shard_log=self.shard_log,
            split=split,
            streams=self.streams,
            skip_batches=self._resume_skip() if train else 0,
            batch_size=self.batch_size,
            decode_cache_dir=self.decode_cache_dir,
            decode_cache_gb=self.decode_cache_gb,
            yield_batches=True,
            shard_checks=self.shard_checks,
        )

    def _loader(self, split: str, train: bool) -> DataLoader:
        stream = self.stream(split, train)
        # the stream collates its own batches (ahead, in a thread); each loader worker makes
        # whole batches of its samples, as the DataLoader's own batching would
        return DataLoader(
            stream,
            batch_size=None,
            num_workers=self.num_workers,
            # workers start from a fresh forkserver process, not a fork of this one: a process
            # that ran Prefect, Dask or MLflow clients holds threads, and a fork of it inherits
            # their locks and atexit hooks (a worker exited with code 1 and no traceback at its
            # end, in CI, after such tests had run in the same process)
            multiprocessing_context=_worker_context() if self.num_workers else None,
            collate_fn=_as_is,
            persistent_workers=False,  # a fresh loader per epoch carries the epoch's shuffle seed
            # its own generator for the worker base seed: creating a loader then draws nothing
            # from the global RNG, which a resumed run restores at its first batch
            generator=torch.Generator().manual_seed(self.seed + 1_000_003 * stream.epoch),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
