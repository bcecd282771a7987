"""Config section for training: data loading, model size, and the Lightning trainer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from modalops.config.base import Section


class TrainConfig(Section):
    """How the fused model and the single-stream baselines are trained."""

    streams: list[str] | None = Field(
        default=None,
        description="Dataset-spec streams the fused model uses (each also gets a single-stream "
        "baseline); null: every stream of the spec. Names are checked against the spec when "
        "training starts.",
    )
    baselines: bool = Field(
        default=True, description="Train one single-stream baseline per stream."
    )
    max_epochs: int = Field(default=12, ge=1, description="Training epochs per model (at most).")
    early_stop_patience: int = Field(
        default=5,
        ge=0,
        description="Stop a model's training when its validation macro-F1 has not improved for "
        "this many epochs (the best epoch's weights are kept either way); 0: never stop early.",
    )
    batch_size: int = Field(default=64, ge=1, description="Per-device batch size.")
    learning_rate: float = Field(default=3e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(default=1e-4, ge=0, description="AdamW weight decay.")
    hidden_dim: int = Field(default=32, ge=2, description="Width of each stream's embedding.")
    modality_dropout: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Chance of hiding each stream of a fused sample in training.",
    )
    accelerator: Literal["cpu", "gpu", "auto"] = Field(
        default="cpu", description="Lightning accelerator."
    )
    devices: int = Field(
        default=1, ge=1, description="Devices per node (one process each with DDP)."
    )
    num_nodes: int = Field(
        default=1,
        ge=1,
        description="Machines in the job (Lightning num_nodes). More than one: launch "
        "`python -m modalops.train.train_worker JOB` on every node with torchrun, which "
        "sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT (docs/training.md).",
    )
    strategy: Literal["auto", "ddp"] = Field(
        default="auto", description="auto (single device) or ddp (gloo on CPU, NCCL on GPU)."
    )
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = Field(
        default="32-true",
        description="Lightning precision; auto: bf16-mixed on a CUDA device that supports "
        "bf16, else 32-true (decided where training runs).",
    )
    checkpoint_every_n_steps: int = Field(
        default=50,
        ge=1,
        description="Write a resume checkpoint to the object store every this many optimizer "
        "steps (and at each epoch end); a restarted training with the same cache key "
        "continues from it. Does not change the result, so not part of the cache key.",
    )
    isolated: bool = Field(
        default=False,
        description="Train in a child process even on one device, so a crash or an "
        "out-of-memory kill of training fails only the task (whose retry resumes), not the "
        "flow process. Does not change the result, so not part of the cache key.",
    )
    num_workers: int = Field(default=0, ge=0, description="DataLoader worker processes per rank.")
    cpu_threads: int | Literal["auto"] = Field(
        default="auto",
        description="Intra-op threads (torch.set_num_threads) of each training process on CPU. "
        "auto: the node's CPUs divided among its training processes, less one each for the "
        "flow's own threads and services, at least 1 (on 2 cores: 1).",
    )
    decode_cache: bool = Field(
        default=True,
        description="Decode each shard once per machine: the first read of a shard writes its "
        "decoded tensors to a local folder, later epochs and the other models of the run read "
        "them instead of decoding JPEG, audio and text again. Gives the same batches, so not "
        "part of the cache key.",
    )
    decode_cache_dir: str | None = Field(
        default=None,
        description="Folder of the decode cache (node-local disk); null: $MODALOPS_DECODED_CACHE, "
        "else <system temp>/modalops-decoded-<uid>, made with mode 0700 and refused when another "
        "user owns it or group or others may write to it (anyone can create that name first).",
    )
    decode_cache_gb: float = Field(
        default=8.0,
        gt=0,
        description="Size limit of the decode cache folder; the least recently used shards are "
        "removed beyond it.",
    )
    seed: int = Field(default=7, description="Seed for weights and sampling.")
    balancing: Literal["none", "class_weight", "weighted_sampling", "subgroup_upsample"] = Field(
        default="none",
        description="Imbalance handling (issue 4): class_weight = inverse-frequency weights in the "
        "loss; weighted_sampling = draw classes about equally from the stream; subgroup_upsample = "
        "draw each balance_group value (e.g. each recording location) about equally.",
    )
    balance_group: str | None = Field(
        default=None,
        description="Metadata column whose values subgroup_upsample equalises; null: the spec's "
        "metadata.stratify. It must be the column the shard split was stratified by, whose "
        "counts the manifest records.",
    )
    shuffle_buffer: int = Field(
        default=512,
        ge=1,
        description="Samples held in the streaming shuffle buffer per loader worker.",
    )
    timeout_s: int = Field(
        default=3600,
        ge=10,
        description="Wall-clock limit of one DDP training subprocess (seconds).",
    )

    @property
    def world_size(self) -> int:
        """Training processes in all: devices per node times nodes."""
        return self.devices * self.num_nodes

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.streams is not None:
            if not self.streams:
                raise ValueError("streams must name at least one stream (or be null: all)")
            dup = sorted({s for s in self.streams if self.streams.count(s) > 1})
            if dup:
                raise ValueError(f"streams: duplicated {dup}")
        if self.devices > 1 and self.strategy != "ddp":
            raise ValueError("devices > 1 needs strategy: ddp")
        if self.num_nodes > 1 and self.strategy != "ddp":
            raise ValueError("num_nodes > 1 needs strategy: ddp")
        if isinstance(self.cpu_threads, int) and self.cpu_threads < 1:
            raise ValueError("cpu_threads must be at least 1 (or auto)")
        if self.precision == "16-mixed" and self.accelerator == "cpu":
            raise ValueError("precision 16-mixed needs a GPU; use bf16-mixed or 32-true on CPU")
        return self
