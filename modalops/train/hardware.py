"""Resolves the trainer's accelerator, precision and DDP backend from the config and the device facts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceFacts:
    """What the machine that trains offers (probed there, or given in a test)."""

    cuda_available: bool
    bf16_supported: bool  # a CUDA device with bfloat16 (Ampere or newer)
    cpus: int = 1  # CPUs this process may run on

    @classmethod
    def probe(cls) -> DeviceFacts:
        import os

        import torch

        cuda = torch.cuda.is_available()
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return cls(
            cuda_available=cuda,
            bf16_supported=cuda and torch.cuda.is_bf16_supported(),
            cpus=max(1, int(cpus or 1)),
        )


@dataclass(frozen=True)
class Hardware:
    """The values handed to Lightning's Trainer."""

    accelerator: str  # "cpu" or "gpu"
    precision: str  # "32-true", "bf16-mixed" or "16-mixed"
    ddp_backend: str  # "gloo" (CPU) or "nccl" (GPU)


def resolve_hardware(accelerator: str, precision: str, facts: DeviceFacts) -> Hardware:
    """accelerator auto: gpu when CUDA is there, else cpu; precision auto: bf16-mixed on a CUDA
    device with bf16, else 32-true (fp16 needs loss scaling and is never picked for you)."""
    if accelerator == "auto":
        accelerator = "gpu" if facts.cuda_available else "cpu"
    if accelerator == "gpu" and not facts.cuda_available:
        raise ValueError("train.accelerator=gpu, but this machine has no CUDA device")
    if precision == "auto":
        precision = "bf16-mixed" if accelerator == "gpu" and facts.bf16_supported else "32-true"
    if precision == "16-mixed" and accelerator != "gpu":
        raise ValueError("train.precision=16-mixed needs a GPU; use bf16-mixed or 32-true on CPU")
    if precision == "bf16-mixed" and accelerator == "gpu" and not facts.bf16_supported:
        raise ValueError(
            "train.precision=bf16-mixed: this GPU has no bfloat16; use 16-mixed, 32-true or auto"
        )
    return Hardware(accelerator, precision, "nccl" if accelerator == "gpu" else "gloo")


def resolve_cpu_threads(setting: int | str, processes_per_node: int, facts: DeviceFacts) -> int:
    """Intra-op threads of each training process. auto: the node's CPUs shared among its
    training processes, less one per process for the flow's own threads and services, at
    least 1. Measured on 2 cores (the demo pipeline): one thread trained the five models in
    93 s, torch's default of two in 222 s, since two spinning OpenMP threads stall whenever
    anything else on the machine wakes up."""
    if setting != "auto":
        return int(setting)
    return max(1, facts.cpus // max(1, processes_per_node) - 1)
