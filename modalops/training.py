"""Train one model (fused or unimodal) on a dataset version with Lightning; upload its checkpoint.

One device trains in this process. DDP (devices > 1) runs in a subprocess we start ourselves,
`python -m modalops.train_worker <spec.json>`, where Lightning's `ddp` strategy launches the
other ranks by re-running that command: Lightning re-executes `sys.argv`, which inside a Prefect
worker or a notebook is not a training script. Results come back through files in `work_dir`.
"""

from __future__ import annotations

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

import torch

from modalops import schema
from modalops.balancing import shares_before_after, weights_from_counts
from modalops.config.train import TrainConfig
from modalops.datamodule import SampleWeights, ShardDataModule
from modalops.models import ClassifierModule, save_checkpoint
from modalops.shards import DatasetManifest
from modalops.store import ObjectStore, join_key

SPEC_NAME = "spec.json"
RESULT_NAME = "result.json"
MODEL_NAME = "model.pt"
SHARD_LOG_DIR = "shard_log"


class TrainingError(RuntimeError):
    """Training failed; the message names the model and where its log is."""


@dataclass
class TrainResult:
    """What one training run produced."""

    model_id: str
    modalities: list[str]
    checkpoint_key: str  # in the store: datasets/<version>/models/<model_id>/model.pt
    metrics: dict[str, float]  # val_macro_f1, val_loss, epochs, seconds, samples_per_s, ...
    ranks_shards: dict[int, list[str]] | None  # train shard URLs each rank opened

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def checkpoint_key(manifest: DatasetManifest, model_id: str) -> str:
    return join_key(manifest.prefix, "models", model_id, MODEL_NAME)


def balancing(
    manifest: DatasetManifest, cfg: TrainConfig
) -> tuple[list[float] | None, SampleWeights | None]:
    """(loss class weights, stream sample weights) for `cfg.balancing`, from the train split counts."""
    dimension, counts = _balance_counts(manifest, cfg)
    weights = weights_from_counts(counts)
    if cfg.balancing == "class_weight":
        return [weights.get(lab, 0.0) for lab in schema.LABELS], None  # absent classes: 0
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
    groups = train.group_counts.get(cfg.balance_group)
    if not groups:
        raise ValueError(
            f"train.balance_group={cfg.balance_group!r}: dataset {manifest.version} has counts only "
            f"for {sorted(train.group_counts)} (set shard.stratify_by to the same column)"
        )
    return cfg.balance_group, dict(groups)


class _EpochMetrics:
    """Collects each epoch's validation metrics (a Lightning callback built lazily)."""

    @staticmethod
    def make():
        from lightning.pytorch.callbacks import Callback

        class Collector(Callback):
            def __init__(self):
                self.history: list[dict[str, float]] = []

            def on_validation_end(self, trainer, pl_module):
                if trainer.sanity_checking:
                    return
                row = {
                    k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")
                }
                row["epoch"] = trainer.current_epoch
                self.history.append(row)

        return Collector()


def fit(spec: dict[str, Any]) -> dict[str, Any] | None:
    """Run the Lightning fit described by `spec` (one rank); rank 0 writes model.pt and result.json."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.strategies import DDPStrategy

    # Lightning's per-fit banners (accelerator lines, a product tip) and a deprecation warning
    # from its own pytree helper would repeat for every model in the pipeline log.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    cfg = TrainConfig.model_validate(spec["cfg"])
    manifest = DatasetManifest.from_json(spec["manifest"])
    work_dir = Path(spec["work_dir"])
    modalities = list(spec["modalities"])
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")

    class_weights, weights = balancing(manifest, cfg)
    dm = ShardDataModule.from_manifest(
        manifest,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        endpoint_url=spec.get("endpoint_url"),
        seed=cfg.seed,
        shuffle_buffer=cfg.shuffle_buffer,
        weights=weights,
        shard_log=str(work_dir / SHARD_LOG_DIR),
        modalities=modalities,
    )
    module = ClassifierModule(
        modalities,
        hidden_dim=cfg.hidden_dim,
        n_classes=len(schema.LABELS),
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        modality_dropout=cfg.modality_dropout if len(modalities) > 1 else 0.0,
        class_weights=class_weights,
    )
    if cfg.devices > 1:
        backend = "gloo" if cfg.accelerator == "cpu" else "nccl"
        strategy: Any = DDPStrategy(process_group_backend=backend)
    else:
        strategy = "auto"
    best = ModelCheckpoint(
        dirpath=work_dir / "checkpoints",
        filename="best",
        monitor="val_macro_f1",
        mode="max",
        save_top_k=1,
    )
    history = _EpochMetrics.make()
    trainer = pl.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=strategy,
        precision=cfg.precision,
        max_epochs=cfg.max_epochs,
        deterministic="warn",  # some GPU kernels have no deterministic variant; warn, don't fail
        callbacks=[best, history],
        enable_checkpointing=True,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        num_sanity_val_steps=0,
        reload_dataloaders_every_n_epochs=1,  # a new loader per epoch carries the epoch's shuffle
        log_every_n_steps=10,
        default_root_dir=work_dir,
    )
    started = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    seconds = time.perf_counter() - started
    if trainer.global_rank != 0:
        return None

    if best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)[
            "state_dict"
        ]
        module.load_state_dict(state)
    best_row = max(history.history, key=lambda r: r.get("val_macro_f1", -1.0), default={})
    n_train = manifest.splits["train"].n_samples
    quota = -(-n_train // cfg.devices) * cfg.devices if (cfg.devices > 1 or weights) else n_train
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
        "model_id": spec["model_id"],
        "dataset_version": manifest.version,
        "metrics": metrics,
        "train_config": cfg.model_dump(),
    }
    save_checkpoint(module.model, work_dir / MODEL_NAME, meta)
    result = {"metrics": metrics, "history": history.history}
    (work_dir / RESULT_NAME).write_text(json.dumps(result, indent=2))
    return result


def _ranks_shards(work_dir: Path, split: str = "train") -> dict[int, list[str]]:
    out: dict[int, set[str]] = {}
    for path in sorted((work_dir / SHARD_LOG_DIR).glob("rank*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("split") == split:
                out.setdefault(int(row["rank"]), set()).add(row["url"])
    return {rank: sorted(urls) for rank, urls in sorted(out.items())}


def _run_subprocess(spec_path: Path, work_dir: Path, model_id: str, timeout_s: int) -> None:
    log_path = work_dir / "train.log"
    env = dict(os.environ)
    # rank 0 of the worker must import this package even when the caller runs from elsewhere
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")) if p
    )
    with log_path.open("w") as log:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "modalops.train_worker", str(spec_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=work_dir,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise TrainingError(
                f"training {model_id}: DDP worker exceeded {timeout_s} s; log: {log_path}"
            ) from None
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
        raise TrainingError(
            f"training {model_id}: DDP worker exited with {proc.returncode}; log: {log_path}\n{tail}"
        )


def train_model(
    store: ObjectStore,
    manifest: DatasetManifest,
    cfg: TrainConfig,
    model_id: str,
    modalities: list[str],
    work_dir: Path,
    endpoint_url: str | None = None,
) -> TrainResult:
    """Train `modalities` on the manifest's train split, validate on val, upload model.pt."""
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
    spec = {
        "cfg": cfg.model_dump(),
        "manifest": manifest.to_json(),
        "model_id": model_id,
        "modalities": list(modalities),
        "work_dir": str(work_dir),
        "endpoint_url": endpoint_url,
    }
    spec_path = work_dir / SPEC_NAME
    spec_path.write_text(json.dumps(spec))
    if cfg.devices > 1:
        _run_subprocess(spec_path, work_dir, model_id, cfg.timeout_s)
    else:
        fit(spec)
    result_path = work_dir / RESULT_NAME
    if not result_path.exists():
        raise TrainingError(
            f"training {model_id}: no {RESULT_NAME} in {work_dir} (did rank 0 finish?)"
        )
    result = json.loads(result_path.read_text())
    key = checkpoint_key(manifest, model_id)
    store.put_file(key, work_dir / MODEL_NAME)
    return TrainResult(
        model_id=model_id,
        modalities=[m for m in schema.MODALITIES if m in modalities],
        checkpoint_key=key,
        metrics=result["metrics"],
        ranks_shards=_ranks_shards(work_dir),
    )
