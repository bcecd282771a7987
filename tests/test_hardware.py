"""Accelerator, precision and DDP backend resolution, with the device facts given (no GPU here)."""

from __future__ import annotations

import pytest

from modalops.config.train import TrainConfig
from modalops.train.hardware import DeviceFacts, resolve_hardware
from modalops.train.training import _strategy

CPU = DeviceFacts(cuda_available=False, bf16_supported=False)
AMPERE = DeviceFacts(cuda_available=True, bf16_supported=True)
VOLTA = DeviceFacts(cuda_available=True, bf16_supported=False)


@pytest.mark.parametrize(
    ("accelerator", "precision", "facts", "expected"),
    [
        ("auto", "auto", CPU, ("cpu", "32-true", "gloo")),
        ("auto", "auto", AMPERE, ("gpu", "bf16-mixed", "nccl")),
        ("auto", "auto", VOLTA, ("gpu", "32-true", "nccl")),  # no bf16: never fp16 unasked
        ("cpu", "auto", AMPERE, ("cpu", "32-true", "gloo")),  # bf16 autocast only on the GPU
        ("gpu", "16-mixed", VOLTA, ("gpu", "16-mixed", "nccl")),
        ("cpu", "bf16-mixed", CPU, ("cpu", "bf16-mixed", "gloo")),
    ],
)
def test_resolution(accelerator, precision, facts, expected):
    hw = resolve_hardware(accelerator, precision, facts)
    assert (hw.accelerator, hw.precision, hw.ddp_backend) == expected


@pytest.mark.parametrize(
    ("accelerator", "precision", "facts", "message"),
    [
        ("gpu", "auto", CPU, "no CUDA device"),
        ("auto", "16-mixed", CPU, "16-mixed needs a GPU"),
        ("gpu", "bf16-mixed", VOLTA, "no bfloat16"),
    ],
)
def test_impossible_settings_are_refused_by_name(accelerator, precision, facts, message):
    with pytest.raises(ValueError, match=message):
        resolve_hardware(accelerator, precision, facts)


def test_this_machine_probes_and_auto_trains_somewhere():
    facts = DeviceFacts.probe()
    hw = resolve_hardware("auto", "auto", facts)
    assert hw.accelerator == ("gpu" if facts.cuda_available else "cpu")


def test_ddp_backend_follows_the_resolved_accelerator():
    cfg = TrainConfig(accelerator="auto", devices=2, strategy="ddp", precision="auto")
    for facts, backend in ((CPU, "gloo"), (AMPERE, "nccl")):
        hw = resolve_hardware(cfg.accelerator, cfg.precision, facts)
        assert _strategy(cfg, hw.ddp_backend).process_group_backend == backend
    assert _strategy(TrainConfig(), "gloo") == "auto"
    assert _strategy(TrainConfig(strategy="ddp"), "gloo") == "auto"  # one process: no group
    with pytest.raises(ValueError, match="num_nodes > 1 needs strategy: ddp"):
        TrainConfig(num_nodes=2)
    assert TrainConfig(num_nodes=2, devices=4, strategy="ddp").world_size == 8


def test_auto_accelerator_and_precision_train_end_to_end(tmp_path):
    from modalops.store import LocalStore
    from modalops.testing.shards import write_test_shards
    from modalops.train.models import load_classifier
    from modalops.train.training import train_model
    from modalops_demo.names import demo_spec

    store = LocalStore(tmp_path / "store")
    manifest = write_test_shards(store, demo_spec())
    cfg = TrainConfig(
        max_epochs=1, batch_size=8, hidden_dim=4, accelerator="auto", precision="auto"
    )
    result = train_model(store, manifest, cfg, "fused", ["vibration"], tmp_path / "work")
    model, info = load_classifier(store.get_bytes(result.checkpoint_key))
    assert info["meta"]["train_config"]["precision"] == "auto" and result.metrics["epochs"] == 1


@pytest.mark.parametrize(
    ("setting", "processes", "cpus", "threads"),
    [
        ("auto", 1, 2, 1),  # the 2-core machine: one core left to the flow and services
        ("auto", 1, 16, 15),
        ("auto", 4, 16, 3),  # four DDP processes on one node share the cores
        ("auto", 2, 2, 1),  # never below one
        (3, 1, 2, 3),  # an explicit value is taken as given
    ],
)
def test_cpu_threads_auto_leaves_a_core_to_the_flow(setting, processes, cpus, threads):
    from modalops.train.hardware import resolve_cpu_threads

    facts = DeviceFacts(cuda_available=False, bf16_supported=False, cpus=cpus)
    assert resolve_cpu_threads(setting, processes, facts) == threads


def test_cpu_threads_must_be_positive():
    with pytest.raises(ValueError, match="cpu_threads must be at least 1"):
        TrainConfig(cpu_threads=0)
