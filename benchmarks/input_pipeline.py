"""Stall-free input (issue 12): our shard stream against per-file GETs and LitData, and the data stall.

    make bench-deps     # once: litdata (pinned; --no-deps, it declares torchvision, which has no
                        # CPU build here) + obstore and tifffile, i.e.
                        #   .venv/bin/python -m pip install -c constraints.txt --no-deps litdata
                        #   .venv/bin/python -m pip install -c constraints.txt obstore tifffile
    .venv/bin/python benchmarks/input_pipeline.py                # defaults: about 4 minutes
    .venv/bin/python benchmarks/input_pipeline.py --workers 0 2  # also with 2 loader workers

One moto S3 server (server mode, 127.0.0.1), one bucket, the same N samples (the synthetic
windows of modalops/testing/shards.py under the demo spec, every split's shards read as one
training split) in three layouts:

  shards/    our WebDataset shards (write_shards), read by ShardDataModule, with and without the
             decode-once cache (`decode_cache_dir`) when the DataModule has it;
  perfile/   every member of every sample as its own object (`perfile/<key>.<member>`), read by a
             map-style Dataset that GETs each member with boto3 (one request per member, as a user
             who keeps one file per sample would);
  litdata/   `litdata.optimize` over the same samples, as many per chunk as a shard holds, written
             straight to the bucket (its `storage_options` reach boto3 and obstore, so
             `endpoint_url` points them at moto): raw payload bytes decoded in `__getitem__`
             (LitData caches chunks, not tensors), and, for reference, decoded tensors.

Every loader decodes with the same `spec_codecs`, yields the same (inputs, presence, target)
batches and runs with the same batch size and worker count. Epoch 1 (cold: empty local caches)
is timed apart from later epochs (warm). Ratios:

  P3  streaming / per-file GET samples/s        target >= 10x
  P4  streaming / LitData samples/s             target >= 1.0x
  P5  data stall: mean step time of the fused model (forward, loss, backward, AdamW) over the
      real loader's warm epochs / over the same batches held in a list    target <= 1.05x

The streaming figure in P3/P4 is the loader a training run uses (decode cache on where the
DataModule has it), over later epochs; the epoch-1 ratio and the ratio without the cache follow
in brackets. Timings share 2 CPU cores with whatever else runs (a loaded machine makes a
training step several times slower and very uneven): rerun before trusting a figure near its
target; P5 also prints the share of time spent waiting for the loader, which load hardly moves.
"""

from __future__ import annotations

import argparse
import inspect
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from modalops.config.pipeline import ShardConfig
from modalops.config.train import TrainConfig
from modalops.dataset.spec import DatasetSpec
from modalops.services import start_s3_server
from modalops.shard import SampleReader, iter_tar_samples, write_shards
from modalops.store import S3Store
from modalops.testing.shards import make_rows, put_parts
from modalops.train.datamodule import ShardDataModule
from modalops.train.inputs import spec_codecs
from modalops.train.models import MultimodalClassifier

BUCKET = "modalops-input-bench"
Batch = tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]


def collate(items: list[tuple[dict[str, torch.Tensor], torch.Tensor, int]]) -> Batch:
    """The DataModule's batch layout: stacked tensors per stream, presence [B, S], targets [B]."""
    inputs = {s: torch.stack([it[0][s] for it in items]) for s in items[0][0]}
    presence = torch.stack([it[1] for it in items])
    target = torch.tensor([int(it[2]) for it in items], dtype=torch.long)
    return inputs, presence, target


def s3_client(endpoint_url: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url)


# ---- the three layouts --------------------------------------------------------------------------


@dataclass
class Layouts:
    spec: DatasetSpec
    window_s: float
    urls: list[str]  # every split's shards, read as one training split
    samples: list[dict[str, Any]]  # the same samples as tar members: {"__key__", member: bytes}
    shard_bytes: int
    samples_per_shard: int
    perfile: list[tuple[str, list[str]]] = field(default_factory=list)  # (key, members)
    litdata: dict[str, str] = field(default_factory=dict)  # variant -> s3:// dir


def write_our_shards(url: str, args, spec: DatasetSpec) -> Layouts:
    store = S3Store(f"s3://{BUCKET}/shards", endpoint_url=url)
    rows = make_rows(spec, args.sessions, args.windows, window_s=args.window_s)
    keys = put_parts(store, rows, n_parts=4)
    cfg = ShardConfig(samples_per_shard=args.samples_per_shard)
    manifest = write_shards(store, spec, keys, None, cfg, window_s=args.window_s)
    samples, total, keys = [], 0, [k for split in manifest.splits.values() for k in split.shards]
    for key in keys:
        data = store.get_bytes(key)
        total += len(data)
        for sample in iter_tar_samples(io.BytesIO(data), store.uri(key)):
            keep = {k: v for k, v in sample.items() if not k.startswith("__")}
            samples.append({"__key__": sample["__key__"], **keep})
    spec = manifest.dataset_spec()
    urls = [store.uri(k) for k in keys]
    return Layouts(spec, manifest.window_s, urls, samples, total, args.samples_per_shard)


def write_perfile(url: str, layouts: Layouts) -> None:
    client = s3_client(url)
    jobs = []
    for sample in layouts.samples:
        members = sorted(k for k in sample if not k.startswith("__"))
        layouts.perfile.append((sample["__key__"], members))
        jobs += [(f"perfile/{sample['__key__']}.{m}", sample[m]) for m in members]
    with ThreadPoolExecutor(8) as pool:  # setup, not timed
        list(pool.map(lambda kv: client.put_object(Bucket=BUCKET, Key=kv[0], Body=kv[1]), jobs))


class LitItems:
    """optimize()'s fn (pickled into its worker): a shard sample -> one LitData item, either
    every stream's payload bytes (b'' when absent) or the decoded tensors, plus the label index."""

    def __init__(self, variant: str, spec: DatasetSpec, window_s: float):
        self.variant, self.spec, self.window_s = variant, spec, window_s

    def __call__(self, sample: dict[str, Any]):
        reader = SampleReader(self.spec)
        raw = reader(sample)
        item: dict[str, Any] = {"label_index": int(raw["label_index"])}
        if self.variant == "raw":
            for stream, member, _ in reader.members.streams:
                item[f"s:{stream}"] = bytes(sample.get(member) or b"")
        else:
            tensors, presence = spec_codecs(self.spec, self.window_s)(raw["streams"])
            item["presence"] = presence
            item.update({f"t:{s}": t for s, t in tensors.items()})
        yield item


def allow_plain_http_for_litdata() -> None:
    """LitData moves chunks with obstore, built with its own client options, which replace
    obstore's `AWS_ALLOW_HTTP`; moto serves plain http, so allow it there (https S3 needs none
    of this). Without obstore installed LitData uses boto3 and this changes nothing."""
    from litdata.streaming import downloader

    options = getattr(downloader, "_OBSTORE_CLIENT_OPTIONS", None)
    if isinstance(options, dict):
        options["allow_http"] = True
    else:
        print("LitData: found no obstore client options to allow http (other litdata version?)")


def write_litdata(url: str, layouts: Layouts, variants: list[str]) -> None:
    import litdata

    allow_plain_http_for_litdata()

    for variant in variants:
        out = f"s3://{BUCKET}/litdata/{variant}"
        litdata.optimize(
            fn=LitItems(variant, layouts.spec, layouts.window_s),
            inputs=layouts.samples,
            output_dir=out,
            # as many samples per chunk as our shards hold: same object count, same GET sizes
            chunk_size=layouts.samples_per_shard,
            num_workers=1,
            # optimize() otherwise sets the process-wide start method to spawn, which would
            # slow down every DataLoader started after it (the per-file and streaming ones too)
            start_method="fork",
            mode="overwrite",
            storage_options={"endpoint_url": url},
            verbose=False,
        )
        layouts.litdata[variant] = out


# ---- loaders ------------------------------------------------------------------------------------


class PerFileGetDataset(Dataset):
    """One sample = one GET per member (payloads and the label json), decoded like the shards."""

    def __init__(self, index: list[tuple[str, list[str]]], endpoint_url: str, spec, window_s):
        self.index, self.endpoint_url = index, endpoint_url
        self.spec, self.window_s = spec, window_s
        self._client = None
        self._reader = SampleReader(spec)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        if self._client is None:  # one client per loader worker (boto3 clients don't fork)
            self._client = s3_client(self.endpoint_url)
        key, members = self.index[i]
        sample: dict[str, Any] = {"__key__": key}
        for m in members:
            obj = self._client.get_object(Bucket=BUCKET, Key=f"perfile/{key}.{m}")
            sample[m] = obj["Body"].read()
        raw = self._reader(sample)
        tensors, presence = spec_codecs(self.spec, self.window_s)(raw["streams"])
        return tensors, presence, raw["label_index"]


def litdata_dataset(variant: str, uri: str, url: str, cache_dir: str, spec, window_s, seed: int):
    from litdata import StreamingDataset

    members = SampleReader(spec).members.streams

    class RawPayloads(StreamingDataset):
        """Chunks of payload bytes; decoded per item with the spec's codecs."""

        def __getitem__(self, index):
            item = super().__getitem__(index)
            streams = {}
            for stream, _, text in members:
                data = item[f"s:{stream}"]
                streams[stream] = (data.decode("utf-8") if text else data) if data else None
            tensors, presence = spec_codecs(spec, window_s)(streams)
            return tensors, presence, item["label_index"]

    class DecodedTensors(StreamingDataset):
        """Chunks of decoded tensors (what our decode cache holds)."""

        def __getitem__(self, index):
            item = super().__getitem__(index)
            tensors = {s: item[f"t:{s}"] for s in spec.stream_names}
            return tensors, item["presence"], item["label_index"]

    cls = RawPayloads if variant == "raw" else DecodedTensors
    return cls(
        uri, cache_dir=cache_dir, shuffle=True, seed=seed, storage_options={"endpoint_url": url}
    )


# ---- timing -------------------------------------------------------------------------------------


@dataclass
class Figure:
    loader: str
    workers: int
    epochs: list[tuple[float, int]]  # (seconds, samples) per epoch

    @property
    def cold(self) -> float:
        s, n = self.epochs[0]
        return n / s

    @property
    def warm(self) -> float:
        later = self.epochs[1:] or self.epochs
        return sum(n for _, n in later) / sum(s for s, _ in later)


def time_epochs(name: str, workers: int, loader_for: Callable[[int], Iterable], epochs: int):
    out = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        n = 0
        for _, _, target in loader_for(epoch):
            n += len(target)
        out.append((time.perf_counter() - t0, n))
    fig = Figure(name, workers, out)
    per_epoch = ", ".join(f"{n / s:.0f}" for s, n in out)
    print(f"  {name:38s} workers={workers}: samples/s per epoch {per_epoch}", flush=True)
    return fig


def has_decode_cache() -> bool:
    return "decode_cache_dir" in inspect.signature(ShardDataModule.__init__).parameters


def streaming_loader(layouts: Layouts, url: str, args, workers: int, cache_dir: str | None):
    extra = {"decode_cache_dir": cache_dir} if cache_dir is not None else {}
    dm = ShardDataModule(
        # all splits as one training split: every loader reads the same N samples
        {"train": layouts.urls},
        layouts.spec,
        layouts.window_s,
        sizes={"train": len(layouts.samples)},
        batch_size=args.batch,
        num_workers=workers,
        endpoint_url=url,
        seed=args.seed,
        **extra,
    )

    def loader_for(epoch: int):
        dm.epoch = epoch  # a new loader per epoch carries the epoch's shuffle, as in training
        return dm.train_dataloader()

    return loader_for


# ---- P5: data stall -----------------------------------------------------------------------------


@dataclass
class Stall:
    method: str
    real_s: list[float] = field(default_factory=list)  # step times over the loader (wait included)
    memory_s: list[float] = field(default_factory=list)  # step times over batches held in a list
    wait_s: float = 0.0  # of real_s, the time spent waiting for the loader's next batch
    steps: int = 0  # batches in one epoch

    @property
    def ratio(self) -> float:
        return statistics.mean(self.real_s) / statistics.mean(self.memory_s)

    @property
    def median_ratio(self) -> float:
        """Median of step-i-over-the-loader / step-i-in-memory: robust to the odd slow step."""
        return statistics.median(r / m for r, m in zip(self.real_s, self.memory_s, strict=False))

    @property
    def wait_ratio(self) -> float:
        """The stall if waiting for batches were the loader's only cost (it also competes for
        the CPU when it has workers, which only the step-time ratio sees)."""
        total = sum(self.real_s)
        return total / (total - self.wait_s)


def train_step(model, optimizer, batch: Batch) -> None:
    inputs, presence, target = batch
    loss = F.cross_entropy(model(inputs, presence), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def loader_pass(model, optimizer, loader: Iterable[Batch], out: Stall | None, keep=None) -> None:
    it = iter(loader)  # starting loader workers counts as waiting: every epoch pays it
    while True:
        t0 = time.perf_counter()
        batch = next(it, None)
        waited = time.perf_counter() - t0
        if batch is None:
            break
        train_step(model, optimizer, batch)
        if out is not None:
            out.real_s.append(time.perf_counter() - t0)
            out.wait_s += waited
        if keep is not None:
            keep.append(batch)


def memory_pass(model, optimizer, held: list[Batch], out: Stall) -> None:
    for batch in held:
        t0 = time.perf_counter()
        train_step(model, optimizer, batch)
        out.memory_s.append(time.perf_counter() - t0)


def interleaved_pass(model, optimizer, loader: Iterable[Batch], held: list[Batch], out: Stall):
    """Step i on the loader's batch i and step i on held batch i, back to back, the first of the
    pair alternating: load on a shared machine drifts within seconds and cancels out here."""
    it = iter(loader)
    for i in range(len(held) + 1):
        for which in ("real", "memory") if i % 2 == 0 else ("memory", "real"):
            t0 = time.perf_counter()
            if which == "memory":
                if i < len(held):
                    train_step(model, optimizer, held[i])
                    out.memory_s.append(time.perf_counter() - t0)
                continue
            batch = next(it, None)
            waited = time.perf_counter() - t0
            if batch is None:
                continue
            train_step(model, optimizer, batch)
            out.real_s.append(time.perf_counter() - t0)
            out.wait_s += waited


def data_stall(layouts: Layouts, loader_for: Callable[[int], Iterable], workers: int, args):
    """The fused model's step time over warm loader epochs against the same batches in memory.

    Without loader workers the two kinds of step are interleaved one by one (nothing runs in
    the background, so a step over the loader costs exactly its wait plus its compute). With
    workers they would prefetch during the in-memory steps and slow those down too, so whole
    passes alternate instead (order swapped every round)."""
    torch.manual_seed(args.seed)
    cfg = TrainConfig()
    model = MultimodalClassifier(
        layouts.spec, layouts.spec.stream_names, cfg.hidden_dim, layouts.window_s
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    held: list[Batch] = []
    loader_pass(model, optimizer, loader_for(100), None, held)  # warm-up; keeps one epoch
    out = Stall("steps interleaved" if workers == 0 else "passes alternated", steps=len(held))
    for r in range(args.stall_rounds):
        loader = loader_for(101 + r)
        if workers == 0:
            interleaved_pass(model, optimizer, loader, held, out)
        elif r % 2 == 0:
            loader_pass(model, optimizer, loader, out)
            memory_pass(model, optimizer, held, out)
        else:
            memory_pass(model, optimizer, held, out)
            loader_pass(model, optimizer, loader, out)
    return out


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--windows", type=int, default=60)
    ap.add_argument("--window-s", type=float, default=1.0)
    ap.add_argument("--samples-per-shard", type=int, default=64)
    ap.add_argument("--batch", type=int, default=TrainConfig().batch_size)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per loader: 1 cold, then warm")
    ap.add_argument("--perfile-epochs", type=int, default=2, help="per-file GET is slow")
    ap.add_argument("--workers", type=int, nargs="+", default=[0], help="DataLoader workers")
    ap.add_argument("--stall-rounds", type=int, default=4, help="P5: loader/memory pass pairs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        default="auto",
        help="torch intra-op threads, as train.cpu_threads (auto: what training would use here)",
    )
    args = ap.parse_args()
    from modalops.train.hardware import DeviceFacts, resolve_cpu_threads

    threads = args.threads if args.threads == "auto" else int(args.threads)
    torch.set_num_threads(resolve_cpu_threads(threads, 1, DeviceFacts.probe()))
    # moto takes any credentials; set them so boto3 looks no further
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "modalops-bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "modalops-bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from modalops_demo.names import demo_spec

    try:
        import litdata

        variants, lit_version = ["raw", "decoded"], litdata.__version__
    except ImportError:
        variants, lit_version = [], None
        print("litdata is not installed (make bench-deps): P4 is skipped")
    cache = has_decode_cache()
    if not cache:
        print("decode cache: not available")
    figures: dict[tuple[str, int], Figure] = {}
    stalls: dict[int, Stall] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        s3 = start_s3_server(tmp)
        try:
            s3_client(s3.url).create_bucket(Bucket=BUCKET)
            t0 = time.perf_counter()
            layouts = write_our_shards(s3.url, args, demo_spec())
            write_perfile(s3.url, layouts)
            if variants:
                write_litdata(s3.url, layouts, variants)
            n_objects = sum(len(m) for _, m in layouts.perfile)
            print(
                f"setup {time.perf_counter() - t0:.0f} s: {len(layouts.samples)} samples; "
                f"{len(layouts.urls)} shards of {layouts.shard_bytes / len(layouts.urls) / 1e6:.1f} MB; "
                f"{n_objects} per-file objects; litdata {lit_version or '-'}; "
                f"batch {args.batch}; torch threads {torch.get_num_threads()}",
                flush=True,
            )
            for w in args.workers:
                print(f"num_workers={w}:", flush=True)
                measure_workers(w, layouts, s3.url, args, tmp, cache, variants, figures, stalls)
        finally:
            s3.stop()
    report(figures, stalls, args.workers, cache)


def measure_workers(w, layouts, url, args, tmp, cache, variants, figures, stalls) -> None:
    """Every loader's epochs with `w` DataLoader workers, then P5 over the streaming loader."""
    name = "streaming shards (decode every epoch)"
    loader_for = streaming_loader(layouts, url, args, w, None)
    figures[name, w] = time_epochs(name, w, loader_for, args.epochs)
    if cache:
        name = "streaming + decode cache"
        loader_for = streaming_loader(layouts, url, args, w, str(tmp / f"decoded-{w}"))
        figures[name, w] = time_epochs(name, w, loader_for, args.epochs)
    ds = PerFileGetDataset(layouts.perfile, url, layouts.spec, layouts.window_s)

    def perfile_for(epoch: int):
        g = torch.Generator().manual_seed(args.seed + epoch)
        return DataLoader(
            ds, args.batch, shuffle=True, num_workers=w, collate_fn=collate, generator=g
        )

    figures["per-file GET", w] = time_epochs("per-file GET", w, perfile_for, args.perfile_epochs)
    for variant in variants:
        from litdata import StreamingDataLoader

        lit = litdata_dataset(
            variant,
            layouts.litdata[variant],
            url,
            str(tmp / f"litcache-{variant}-{w}"),  # empty: epoch 1 downloads every chunk
            layouts.spec,
            layouts.window_s,
            args.seed,
        )
        # one loader for all epochs: StreamingDataLoader advances its dataset's epoch itself
        dl = StreamingDataLoader(lit, batch_size=args.batch, num_workers=w, collate_fn=collate)
        label = LIT_LABELS[variant]
        figures[label, w] = time_epochs(label, w, lambda epoch, dl=dl: dl, args.epochs)
    # the loader a training run uses (decode cache on where it exists), its cache already warm
    stalls[w] = data_stall(layouts, loader_for, w, args)


LIT_LABELS = {
    "raw": "LitData (raw bytes, decoded per item)",
    "decoded": "LitData (decoded tensors)",
}


def ratio(ours: Figure, plain: Figure, other: Figure) -> str:
    """Later-epoch ratio [epoch-1 ratio; later-epoch ratio without the decode cache]."""
    return (
        f"{ours.warm / other.warm:.1f}x [{ours.cold / other.cold:.1f}x; "
        f"{plain.warm / other.warm:.1f}x]"
    )


def report(figures: dict, stalls: dict, workers: list[int], cache: bool) -> None:
    print()
    print(
        f"{'loader':40s} {'workers':>7s} {'samples/epoch':>13s} {'epoch-1 samples/s':>18s} "
        f"{'later samples/s':>16s}"
    )
    for (name, w), fig in figures.items():
        counts = "/".join(str(c) for c in sorted({n for _, n in fig.epochs}))
        print(f"{name:40s} {w:7d} {counts:>13s} {fig.cold:18.0f} {fig.warm:16.0f}")
    for w in workers:
        plain = figures["streaming shards (decode every epoch)", w]
        ours = figures["streaming + decode cache", w] if cache else plain
        print()
        print(
            f"num_workers={w}; streaming = {'with' if cache else 'without'} the decode cache, "
            "later epochs [epoch 1; later epochs without the decode cache]"
        )

        print(
            f"P3 streaming/per-file GET: {ratio(ours, plain, figures['per-file GET', w])} (target >= 10x)"
        )
        lit = figures.get((LIT_LABELS["raw"], w))
        if lit is not None:
            print(f"P4 streaming/LitData: {ratio(ours, plain, lit)} (target >= 1.0x)")
            lit = figures[LIT_LABELS["decoded"], w]
            print(f"   streaming/LitData decoded tensors: {ratio(ours, plain, lit)} (no target)")
        st = stalls[w]
        paired = f", median paired ratio {st.median_ratio:.2f}x" if w == 0 else ""
        print(
            f"P5 data stall: {st.ratio:.2f}x (target <= 1.05x)   [mean step "
            f"{statistics.mean(st.real_s) * 1e3:.1f} ms over the loader vs "
            f"{statistics.mean(st.memory_s) * 1e3:.1f} ms in memory, {len(st.real_s)} steps "
            f"each, {st.method}{paired}; waiting for the loader: "
            f"{st.wait_s / sum(st.real_s):.1%} of its steps = {st.wait_ratio:.3f}x]"
        )


if __name__ == "__main__":
    main()
