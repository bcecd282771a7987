"""Train one model (fused or single-stream) on a dataset version with Lightning; upload its checkpoint.

The streams, their encoders and the classes come from the dataset spec stored in the manifest.
One device trains in this process. DDP (devices > 1) runs in a subprocess we start ourselves,
`python -m modalops.train.train_worker <job.json>`, where Lightning's `ddp` strategy launches the
other ranks by re-running that command: Lightning re-executes `sys.argv`, which inside a Prefect
worker or a notebook is not a training script. Results come back through files in `work_dir`.
Several machines (num_nodes > 1): `write_job` writes the job and torchrun starts that same
worker on every node (docs/training.md); rank 0 then commits the model itself.

Resume (modalops/train/resume.py): a full Lightning checkpoint goes to the store under the cache
key folder every `checkpoint_every_n_steps` steps and at each epoch end; a training that finds
one for its key continues from it, with the same data order, so it ends where an uninterrupted
run would. It is deleted once the model is committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import DDPStrategy

from modalops.config.train import TrainConfig
from modalops.dataset.spec import DatasetSpec
from modalops.memory import release_freed_memory
from modalops.shard import DatasetManifest
from modalops.store import ObjectStore, join_key, open_store
from modalops.train import FUSED_ID
from modalops.train.balancing import shares_before_after, weights_from_counts
from modalops.train.datamodule import SampleWeights, ShardDataModule
from modalops.train.decoded_cache import default_cache_dir
from modalops.train.hardware import DeviceFacts, resolve_cpu_threads, resolve_hardware
from modalops.train.models import CHECKPOINT_FORMAT, ClassifierModule, save_checkpoint
from modalops.train.rendezvous import loopback_store
from modalops.train.resume import (
    FaultInjection,
    ResumeCheckpoints,
    RngState,
    clear_resume,
    fetch_resume,
    resume_prefix,
)

JOB_NAME = "job.json"
RESULT_NAME = "result.json"
MODEL_NAME = "model.pt"
SHARD_LOG_DIR = "shard_log"
TRAINED_NAME = "trained.json"  # the sidecar that commits a cached checkpoint (see find_trained)
# config fields that change how training runs, not what it produces: left out of the cache key,
# so a retry with another checkpoint interval still finds (and resumes) the same training
NOT_IN_CACHE_KEY = frozenset(
    {
        "checkpoint_every_n_steps",
        "isolated",
        "timeout_s",
        "decode_cache",
        "decode_cache_dir",
        "decode_cache_gb",
    }
)


class TrainingError(RuntimeError):
    """Training failed; the message names the model and where its log is."""


@dataclass
class TrainResult:
    """What one training run produced."""

    model_id: str
    streams: list[str]  # in spec order
    checkpoint_key: str  # datasets/<version>/models/<model_id>/<train key>/model-<sha16>.pt
    metrics: dict[str, float]  # val_macro_f1, val_loss, epochs, seconds, samples_per_s, ...
    ranks_shards: dict[int, list[str]] | None  # train shard URLs each rank opened
    mlflow_run_id: str | None = None  # the MLflow run holding this model's curves, if tracked
    checkpoint_sha256: str | None = None  # digest of the checkpoint's bytes
    cache_hit: bool = False  # True: reused a checkpoint trained earlier on the same inputs
    trained_in_run: str | None = None  # MLflow run that trained it (differs on a cache hit)
    resumed_from_step: int = 0  # >0: continued an interrupted training from this optimizer step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def checkpoint_key(manifest: DatasetManifest, model_id: str) -> str:
    return join_key(manifest.prefix, "models", model_id, MODEL_NAME)


def train_cache_key(
    manifest: DatasetManifest, model_id: str, streams: list[str], cfg: TrainConfig
) -> str:
    """Content key of one training: dataset version, model id, streams and the whole training
    config (plus the package version, as code changes can change the result). Equal keys mean
    the stored checkpoint is what training would produce again (same seed, same data)."""
    import modalops

    material = {
        "dataset_version": manifest.version,
        "spec_digest": manifest.spec_digest,
        "model_id": model_id,
        "streams": list(streams),
        "train": cfg.model_dump(mode="json", exclude=set(NOT_IN_CACHE_KEY)),
        "modalops": modalops.__version__,
        # a checkpoint of another format (another architecture) is not what training makes now
        "checkpoint_format": CHECKPOINT_FORMAT,
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cache_prefix(manifest: DatasetManifest, model_id: str, key: str) -> str:
    """datasets/<version>/models/<model_id>/<train key>/: one folder per distinct training."""
    return join_key(manifest.prefix, "models", model_id, key)


def find_trained(
    store: ObjectStore,
    manifest: DatasetManifest,
    cfg: TrainConfig,
    model_id: str,
    streams: list[str],
) -> TrainResult | None:
    """The TrainResult of an earlier training with the same key, or None.

    The sidecar is written after the checkpoint, so its presence commits the entry; the
    checkpoint's name carries its digest, so two concurrent trainings of one key never overwrite
    each other's bytes and the sidecar always names a whole checkpoint."""
    streams = resolve_streams(manifest.dataset_spec(), list(streams))
    key = train_cache_key(manifest, model_id, streams, cfg)
    sidecar = join_key(cache_prefix(manifest, model_id, key), TRAINED_NAME)
    if not store.exists(sidecar):
        return None
    doc = json.loads(store.get_text(sidecar))
    if doc.get("key") != key or not store.exists(doc["checkpoint_key"]):
        return None
    ranks = doc.get("ranks_shards")
    return TrainResult(
        model_id=model_id,
        streams=streams,
        checkpoint_key=doc["checkpoint_key"],
        metrics={k: float(v) for k, v in doc["metrics"].items()},
        ranks_shards={int(r): list(v) for r, v in ranks.items()} if ranks else None,
        checkpoint_sha256=doc.get("checkpoint_sha256"),
        cache_hit=True,
        trained_in_run=doc.get("mlflow_run_id"),
    )


def _commit_trained(
    store: ObjectStore,
    manifest: DatasetManifest,
    cfg: TrainConfig,
    model_file: Path,
    result: TrainResult,
) -> TrainResult:
    """Upload the checkpoint under its digest, then the sidecar that makes it a cache entry."""
    key = train_cache_key(manifest, result.model_id, result.streams, cfg)
    prefix = cache_prefix(manifest, result.model_id, key)
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    result.checkpoint_key = join_key(prefix, f"model-{digest[:16]}.pt")
    result.checkpoint_sha256 = digest
    result.trained_in_run = result.mlflow_run_id
    store.put_file(result.checkpoint_key, model_file)
    sidecar = {
        "key": key,
        "model_id": result.model_id,
        "streams": result.streams,
        "dataset_version": manifest.version,
        "checkpoint_key": result.checkpoint_key,
        "checkpoint_sha256": digest,
        "metrics": result.metrics,
        "ranks_shards": result.ranks_shards,
        "mlflow_run_id": result.mlflow_run_id,
        "train_config": cfg.model_dump(mode="json"),
    }
    store.put_text(join_key(prefix, TRAINED_NAME), json.dumps(sidecar, indent=2))
    return result


def resolve_streams(spec: DatasetSpec, streams: list[str] | None) -> list[str]:
    """`streams` (None: every spec stream) in spec order; ValueError names unknown streams."""
    if streams is None:
        return spec.stream_names
    unknown = [s for s in streams if s not in spec.streams]
    if unknown:
        raise ValueError(
            f"train.streams: {unknown} are not streams of dataset spec {spec.name!r}; "
            f"expected names from {spec.stream_names}"
        )
    if not streams:
        raise ValueError("train.streams: name at least one stream")
    return [s for s in spec.stream_names if s in streams]


def baseline_id(stream: str) -> str:
    """Model id of the single-stream baseline on `stream`: the stream's name, as before; a stream
    that happens to be called 'fused' gets 'only_fused' so the ids stay distinct."""
    return f"only_{stream}" if stream == FUSED_ID else stream


def model_plan(spec: DatasetSpec, cfg: TrainConfig) -> list[tuple[str, list[str]]]:
    """The fused model on `cfg.streams` first, then one single-stream baseline per stream (same
    code, one input; none when the fused model has a single stream or baselines are off)."""
    streams = resolve_streams(spec, cfg.streams)
    plan = [(FUSED_ID, streams)]
    if cfg.baselines and len(streams) > 1:
        plan += [(baseline_id(s), [s]) for s in streams]
    return plan


def balancing(
    manifest: DatasetManifest, cfg: TrainConfig
) -> tuple[list[float] | None, SampleWeights | None]:
    """(loss class weights, stream sample weights) for `cfg.balancing`, from the train split counts."""
    dimension, counts = _balance_counts(manifest, cfg)
    weights = weights_from_counts(counts)
    if cfg.balancing == "class_weight":
        classes = manifest.spec["labels"]["classes"]
        return [weights.get(lab, 0.0) for lab in classes], None  # absent classes: 0
    if cfg.balancing in ("weighted_sampling", "subgroup_upsample"):
        return None, SampleWeights(dimension, weights)
    return None, None


def balance_report(manifest: DatasetManifest, cfg: TrainConfig):
    """Train-split distribution before and after `cfg.balancing` (share of samples vs of weight)."""
    dimension, counts = _balance_counts(manifest, cfg)
    weights = None if cfg.balancing == "none" else weights_from_counts(counts)
    return shares_before_after(counts, weights, dimension)


def _balance_counts(manifest: DatasetManifest, cfg: TrainConfig) -> tuple[str, dict[str, int]]:
    train = manifest.splits["train"]
    if cfg.balancing != "subgroup_upsample":
        return "label", dict(train.label_counts)
    group = cfg.balance_group or manifest.stratify_by
    if group is None:
        raise ValueError(
            f"train.balancing=subgroup_upsample needs train.balance_group, or a dataset spec "
            f"with metadata.stratify (dataset {manifest.version} was split without one)"
        )
    groups = train.group_counts.get(group)
    if not groups:
        raise ValueError(
            f"train.balance_group={group!r}: dataset {manifest.version} has counts only "
            f"for {sorted(train.group_counts)} (set shard.stratify_by to the same column)"
        )
    return group, dict(groups)


def curve_key(name: str) -> str:
    """The MLflow name of a per-epoch curve: `train_loss` -> `train/loss`, `val_macro_f1` ->
    `val/macro_f1`. MLflow's charts put metrics named `<group>/...` in a section per group,
    sections before the ungrouped ones, so the curves open the run's Model metrics tab instead
    of sitting among its single-value figures in alphabetical order (issue 24)."""
    for prefix in ("train_", "val_"):
        if name.startswith(prefix):
            return f"{prefix[:-1]}/{name[len(prefix) :]}"
    return name


def _curve_logger(tracking: dict[str, str]) -> Any:
    """Lightning's MLflow logger writing into an existing run (the pipeline's child run for this
    model): the epoch curves only. Params and the run's lifecycle belong to the pipeline, so
    hyperparameters (the whole spec, flattened) are not logged and the run is not closed here."""
    from lightning.pytorch.loggers import MLFlowLogger

    class CurveLogger(MLFlowLogger):
        def log_hyperparams(self, params, *args, **kwargs) -> None:
            pass

        def log_metrics(self, metrics, step=None) -> None:
            # epoch-level values: one point per epoch, at step = epoch (the chart's x axis)
            metrics = {curve_key(k): v for k, v in metrics.items()}
            epoch = metrics.pop("epoch", None)
            if metrics:
                super().log_metrics(metrics, int(epoch) if epoch is not None else step)

        def finalize(self, status: str = "success") -> None:
            pass

    return CurveLogger(tracking_uri=tracking["tracking_uri"], run_id=tracking["run_id"])


class _EpochMetrics(Callback):
    """Collects each epoch's validation metrics (carried through a resume checkpoint)."""

    def __init__(self):
        self.history: list[dict[str, float]] = []

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        row = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
        row["epoch"] = trainer.current_epoch
        self.history.append(row)

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(r) for r in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(r) for r in state_dict["history"]]


class _ReturnFreedMemory(Callback):
    """Hands heap memory freed during an epoch back to the system: the loader's background
    thread allocates in its own malloc arena, and what it frees there otherwise stays with the
    process, epoch after epoch (modalops/memory.py)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        release_freed_memory()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        release_freed_memory()


class _BestWeights(Callback):
    """Keeps the weights of the epoch with the highest val_macro_f1 (strictly higher replaces,
    as ModelCheckpoint's mode=max does) and writes them weights-only to `path` on rank 0. Its
    state rides in the resume checkpoint, so a resumed run still knows the best epoch."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.score: float | None = None
        self.epoch = -1
        self.weights: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or "val_macro_f1" not in trainer.callback_metrics:
            return
        score = float(trainer.callback_metrics["val_macro_f1"])
        if self.score is None or score > self.score:
            self.score, self.epoch = score, trainer.current_epoch
            self.weights = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
            if trainer.global_rank == 0:
                self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": self.weights, "epoch": self.epoch}, self.path)

    def state_dict(self) -> dict[str, Any]:
        return {"score": self.score, "epoch": self.epoch, "weights": self.weights}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.score, self.epoch = state_dict["score"], state_dict["epoch"]
        self.weights = state_dict["weights"]
        if self.weights is not None:
            self._write()


def _early_stopping(cfg: TrainConfig) -> list[Callback]:
    """Lightning's EarlyStopping on val_macro_f1 (the metric _BestWeights keeps the best of)."""
    if cfg.early_stop_patience <= 0:
        return []
    from lightning.pytorch.callbacks import EarlyStopping

    return [EarlyStopping("val_macro_f1", mode="max", patience=cfg.early_stop_patience)]


def _strategy(cfg: TrainConfig, backend: str) -> Any:
    if cfg.world_size > 1:
        return DDPStrategy(process_group_backend=backend)
    return "auto"


def fit(job: dict[str, Any]) -> dict[str, Any] | None:
    """Run the Lightning fit described by `job` (one rank); rank 0 writes model.pt and result.json.

    A resume checkpoint under the job's `resume_prefix` in the store is continued from."""
    # Lightning's per-fit banners (accelerator lines, a product tip) and a deprecation warning
    # from its own pytree helper would repeat for every model in the pipeline log.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # we fast-forward the iterable loader ourselves on a mid-epoch resume (ShardStream.skip_batches)
    warnings.filterwarnings("ignore", message=r".*your dataloader is not resumable.*")
    cfg = TrainConfig.model_validate(job["cfg"])
    manifest = DatasetManifest.from_json(job["manifest"])
    work_dir = Path(job["work_dir"])
    streams = list(job["streams"])
    store = open_store(job["store_uri"], endpoint_url=job.get("endpoint_url"))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    facts = DeviceFacts.probe()
    hardware = resolve_hardware(cfg.accelerator, cfg.precision, facts)
    torch.set_num_threads(resolve_cpu_threads(cfg.cpu_threads, cfg.devices, facts))

    class_weights, weights = balancing(manifest, cfg)
    dm = ShardDataModule.from_manifest(
        manifest,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        endpoint_url=job.get("endpoint_url"),
        seed=cfg.seed,
        shuffle_buffer=cfg.shuffle_buffer,
        weights=weights,
        shard_log=str(work_dir / SHARD_LOG_DIR),
        streams=streams,
        decode_cache_dir=str(cfg.decode_cache_dir or default_cache_dir())
        if cfg.decode_cache
        else None,
        decode_cache_gb=cfg.decode_cache_gb,
    )
    module = ClassifierModule(
        manifest.spec,
        streams,
        hidden_dim=cfg.hidden_dim,
        window_s=manifest.window_s,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        modality_dropout=cfg.modality_dropout if len(streams) > 1 else 0.0,
        class_weights=class_weights,
    )
    best = _BestWeights(work_dir / "checkpoints" / "best.ckpt")
    history = _EpochMetrics()
    resume_dir = work_dir / "resume"
    trainer = pl.Trainer(
        accelerator=hardware.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=_strategy(cfg, hardware.ddp_backend),
        precision=hardware.precision,
        max_epochs=cfg.max_epochs,
        deterministic="warn",  # some GPU kernels have no deterministic variant; warn, don't fail
        callbacks=[
            best,
            history,
            RngState(),
            ResumeCheckpoints(
                store, job["resume_prefix"], cfg.checkpoint_every_n_steps, resume_dir
            ),
            FaultInjection(),
            _ReturnFreedMemory(),
            *_early_stopping(cfg),
        ],
        enable_checkpointing=False,  # _BestWeights and ResumeCheckpoints write what we keep
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=_curve_logger(job["tracking"]) if job.get("tracking") else False,
        num_sanity_val_steps=0,
        reload_dataloaders_every_n_epochs=1,  # a new loader per epoch carries the epoch's shuffle
        log_every_n_steps=10,
        default_root_dir=work_dir,
    )
    # every rank reads the checkpoint itself (under torchrun the nodes share no disk)
    found = fetch_resume(store, job["resume_prefix"], resume_dir / f"restore-{trainer.global_rank}")
    ckpt_path, resumed_step = (str(found[0]), int(found[1]["step"])) if found else (None, 0)
    if found and trainer.global_rank == 0:
        print(
            f"modalops: resuming {job['model_id']} from step {resumed_step} "
            f"(epoch {found[1]['epoch']}, {found[1].get('reason')})",
            flush=True,
        )
    started = time.perf_counter()
    # weights_only=True: the full checkpoint holds only tensors and plain values
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    seconds = time.perf_counter() - started
    if trainer.global_rank != 0:
        return None

    if best.weights is not None:
        module.load_state_dict(load_best_state(best.path))
    best_row = max(history.history, key=lambda r: r.get("val_macro_f1", -1.0), default={})
    per_rank = dm.stream("train", train=True).rank_quota()  # samples each rank yielded per epoch
    quota = manifest.splits["train"].n_samples if per_rank is None else per_rank * cfg.world_size
    epochs = trainer.current_epoch
    metrics = {
        "val_macro_f1": float(best_row.get("val_macro_f1", float("nan"))),
        "val_loss": float(best_row.get("val_loss", float("nan"))),
        "best_epoch": float(best_row.get("epoch", -1)),
        "epochs": float(epochs),
        "seconds": seconds,
        "samples_per_s": quota * epochs / seconds if seconds > 0 else float("nan"),
        "n_params": float(sum(p.numel() for p in module.model.parameters())),
    }
    meta = {
        "model_id": job["model_id"],
        "dataset_version": manifest.version,
        "spec_digest": manifest.spec_digest,
        "metrics": metrics,
        "train_config": cfg.model_dump(),
    }
    save_checkpoint(module.model, work_dir / MODEL_NAME, meta)
    result = {"metrics": metrics, "history": history.history, "resumed_from_step": resumed_step}
    (work_dir / RESULT_NAME).write_text(json.dumps(result, indent=2))
    return result


def load_best_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The state_dict of a Lightning checkpoint, read with `weights_only=True`: the callback writes
    weights only (`save_weights_only=True`) and the hparams are plain values, so no pickled class
    is ever unpickled; a checkpoint that holds one is refused."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's UnpicklingError and friends for foreign files
        raise ValueError(
            f"{path}: refused to load a training checkpoint that is not weights-only ({exc})"
        ) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ValueError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return ckpt["state_dict"]


def _ranks_shards(work_dir: Path, split: str = "train") -> dict[int, list[str]]:
    out: dict[int, set[str]] = {}
    for path in sorted((work_dir / SHARD_LOG_DIR).glob("rank*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("split") == split:
                out.setdefault(int(row["rank"]), set()).add(row["url"])
    return {rank: sorted(urls) for rank, urls in sorted(out.items())}


def _run_subprocess(
    job_path: Path, work_dir: Path, model_id: str, timeout_s: int, ranks: int
) -> None:
    """Run the worker in a subprocess; with several ranks, on a rendezvous that this process
    hosts on loopback (modalops.train.rendezvous), never on every interface."""
    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        if ranks > 1:
            env.update(stack.enter_context(loopback_store(timeout_s)))
        _run_worker(job_path, work_dir, model_id, timeout_s, env)


def _run_worker(
    job_path: Path, work_dir: Path, model_id: str, timeout_s: int, env: dict[str, str]
) -> None:
    log_path = work_dir / "train.log"
    # rank 0 of the worker must import this package even when the caller runs from elsewhere
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")) if p
    )
    with log_path.open("w") as log:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "modalops.train.train_worker", str(job_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=work_dir,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise TrainingError(
                f"training {model_id}: worker exceeded {timeout_s} s; log: {log_path}"
            ) from None
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise TrainingError(
            f"training {model_id}: worker exited with {proc.returncode}; log: {log_path}\n{tail}"
        )


def write_job(
    store: ObjectStore,
    manifest: DatasetManifest,
    cfg: TrainConfig,
    model_id: str,
    streams: list[str],
    work_dir: Path,
    endpoint_url: str | None = None,
    tracking: dict[str, str] | None = None,
) -> Path:
    """Write `<work_dir>/<model_id>/job.json`, what `python -m modalops.train.train_worker`
    runs: on this machine (train_model) or on every node under torchrun (num_nodes > 1)."""
    streams = resolve_streams(manifest.dataset_spec(), list(streams))
    if not manifest.splits.get("train") or not manifest.splits["train"].shards:
        raise ValueError(f"dataset {manifest.version} has no training shards")
    if not manifest.splits.get("val") or not manifest.splits["val"].shards:
        raise ValueError(f"dataset {manifest.version} has no validation shards")
    work_dir = Path(work_dir).resolve() / model_id
    if work_dir.exists():
        # a rerun must not read the previous run's shard log or checkpoints
        import shutil

        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    key = train_cache_key(manifest, model_id, streams, cfg)
    job = {
        "cfg": cfg.model_dump(),
        "manifest": manifest.to_json(),
        "model_id": model_id,
        "streams": streams,
        "work_dir": str(work_dir),
        "store_uri": store.uri(),
        "endpoint_url": endpoint_url or getattr(store, "endpoint_url", None),
        "cache_key": key,
        "resume_prefix": resume_prefix(cache_prefix(manifest, model_id, key)),
        "tracking": dict(tracking) if tracking else None,
    }
    job_path = work_dir / JOB_NAME
    job_path.write_text(json.dumps(job))
    return job_path


def commit_job(job: dict[str, Any], store: ObjectStore | None = None) -> TrainResult:
    """After rank 0 finished `job`: upload its model as the cache entry, drop the resume state."""
    if store is None:
        store = open_store(job["store_uri"], endpoint_url=job.get("endpoint_url"))
    cfg = TrainConfig.model_validate(job["cfg"])
    manifest = DatasetManifest.from_json(job["manifest"])
    work_dir, model_id = Path(job["work_dir"]), job["model_id"]
    result_path = work_dir / RESULT_NAME
    if not result_path.exists():
        raise TrainingError(
            f"training {model_id}: no {RESULT_NAME} in {work_dir} (did rank 0 finish?)"
        )
    result = json.loads(result_path.read_text())
    tracking = job.get("tracking")
    trained = TrainResult(
        model_id=model_id,
        streams=list(job["streams"]),
        checkpoint_key="",  # set by _commit_trained: the content-addressed key
        metrics=result["metrics"],
        ranks_shards=_ranks_shards(work_dir),
        mlflow_run_id=tracking["run_id"] if tracking else None,
        resumed_from_step=int(result.get("resumed_from_step", 0)),
    )
    trained = _commit_trained(store, manifest, cfg, work_dir / MODEL_NAME, trained)
    clear_resume(store, job["resume_prefix"])
    return trained


def train_model(
    store: ObjectStore,
    manifest: DatasetManifest,
    cfg: TrainConfig,
    model_id: str,
    streams: list[str],
    work_dir: Path,
    endpoint_url: str | None = None,
    tracking: dict[str, str] | None = None,
    reuse: bool = True,
) -> TrainResult:
    """Train `streams` on the manifest's train split, validate on val, upload the checkpoint.

    `tracking` ({"tracking_uri", "run_id"}, an absolute URI) names an MLflow run that receives
    the per-epoch curves (train/loss, val/loss, val/macro_f1, val/accuracy) from the training
    process itself, DDP worker included. `reuse`: an earlier training with the same key
    (`train_cache_key`) is returned instead (`cache_hit` True) without training again. An
    interrupted training with the same key resumes from its last resume checkpoint."""
    streams = resolve_streams(manifest.dataset_spec(), list(streams))
    if reuse:
        cached = find_trained(store, manifest, cfg, model_id, streams)
        if cached is not None:
            cached.mlflow_run_id = tracking["run_id"] if tracking else None
            return cached
    if cfg.num_nodes > 1:
        raise ValueError(
            f"train.num_nodes={cfg.num_nodes}: a multi-node training is launched with torchrun "
            "on every node (write_job, then `python -m modalops.train.train_worker JOB`; "
            "docs/training.md), not from train_model"
        )
    job_path = write_job(store, manifest, cfg, model_id, streams, work_dir, endpoint_url, tracking)
    job = json.loads(job_path.read_text())
    if cfg.devices > 1 or cfg.isolated:
        _run_subprocess(job_path, job_path.parent, model_id, cfg.timeout_s, cfg.world_size)
    else:
        fit(job)
    return commit_job(job, store)
