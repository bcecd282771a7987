"""Resume: a training killed mid-epoch (SIGKILL) continues from its store checkpoint and ends with
the weights and val metrics of an uninterrupted run; a Prefect task retry resumes the same way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from modalops.config.train import TrainConfig
from modalops.store import LocalStore, join_key
from modalops.testing.shards import write_test_shards
from modalops.train.models import load_classifier
from modalops.train.resume import FAULT_ENV, FAULT_ONCE_ENV, RESUME_STATE, resume_state
from modalops.train.training import cache_prefix, resume_prefix, train_cache_key, train_model
from modalops_demo.names import demo_spec

REPO = Path(__file__).resolve().parents[1]
STREAMS = ["vibration", "notes"]  # two streams: modality dropout draws from the global RNG
# 24 train samples / batch 4 = 6 steps per epoch, 18 in all; checkpoints at 4, 6, 8, 12, ...
CFG = dict(
    max_epochs=3,
    batch_size=4,
    hidden_dim=4,
    streams=STREAMS,
    baselines=False,
    checkpoint_every_n_steps=4,
    shuffle_buffer=8,  # smaller than an epoch: the buffer's draws matter to the order
    modality_dropout=0.3,
)

CHILD = """
import sys
from pathlib import Path
from modalops.config.train import TrainConfig
from modalops.shard import DatasetManifest
from modalops.store import LocalStore
from modalops.train.training import train_model
store = LocalStore(sys.argv[1])
manifest = DatasetManifest.from_json(Path(sys.argv[2]).read_text())
cfg = TrainConfig.model_validate_json(sys.argv[3])
train_model(store, manifest, cfg, "fused", cfg.streams, Path(sys.argv[4]))
"""


def _dataset(root: Path):
    store = LocalStore(root)
    return store, write_test_shards(store, demo_spec())


def _weights(store, result) -> dict[str, torch.Tensor]:
    model, _ = load_classifier(store.get_bytes(result.checkpoint_key))
    return model.state_dict()


TOLERANCE = 1e-6  # measured: 0 on a quiet machine, 3e-8 under the full suite's load


def _close(a, b) -> bool:
    """Equal structures, floats within TOLERANCE."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= TOLERANCE
    return a == b


def _max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("straight")
    store, manifest = _dataset(tmp / "store")
    cfg = TrainConfig(**CFG)
    result = train_model(store, manifest, cfg, "fused", STREAMS, tmp / "work")
    assert result.resumed_from_step == 0
    history = json.loads((tmp / "work" / "fused" / "result.json").read_text())["history"]
    return {"store": store, "manifest": manifest, "result": result, "history": history}


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(uninterrupted, tmp_path):
    store, manifest = _dataset(tmp_path / "store")
    assert manifest.version == uninterrupted["manifest"].version  # same data, same order
    cfg = TrainConfig(**CFG)
    key = train_cache_key(manifest, "fused", STREAMS, cfg)
    prefix = resume_prefix(cache_prefix(manifest, "fused", key))
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(manifest.to_json())
    env = dict(os.environ, **{FAULT_ENV: "stall@10"})  # stalls mid epoch 1, after step 8's save
    env["PYTHONPATH"] = str(REPO)
    log = (tmp_path / "child.log").open("w")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, store.root, str(manifest_path), cfg.model_dump_json(),
         str(tmp_path / "work")],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        state = None
        while time.monotonic() < deadline and child.poll() is None:
            state = resume_state(store, prefix)
            if state is not None and state["step"] >= 8:
                break
            time.sleep(0.1)
        assert child.poll() is None, (tmp_path / "child.log").read_text()
        assert state is not None and state["step"] == 8, state
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        log.close()
    # step 8 is batch 2 of epoch 1's 6: a checkpoint from the middle of an epoch
    assert state["epoch"] == 1 and state["reason"] == "step"
    assert not store.list(join_key(cache_prefix(manifest, "fused", key), "model-"))

    resumed = train_model(store, manifest, cfg, "fused", STREAMS, tmp_path / "work")
    assert resumed.resumed_from_step == 8
    straight = uninterrupted["result"]
    diff = _max_abs_diff(_weights(store, resumed), _weights(uninterrupted["store"], straight))
    print(f"max |weight difference| resumed vs uninterrupted: {diff:.3g}")
    # equal up to float32 rounding: intra-op threads may sum in another order after a restart
    assert diff <= TOLERANCE
    for name in ("val_macro_f1", "val_loss", "best_epoch", "epochs"):
        assert resumed.metrics[name] == pytest.approx(straight.metrics[name], abs=TOLERANCE), name
    # every epoch's validation, the last one included (which the final weights decide)
    history = json.loads((tmp_path / "work" / "fused" / "result.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [0, 1, 2]  # epoch 1 validated once, not twice
    assert _close(history, uninterrupted["history"])
    # the resume state is gone once the model is committed
    assert not store.exists(join_key(prefix, RESUME_STATE))
    assert resume_state(store, prefix) is None


def test_a_prefect_retry_resumes_the_killed_training(
    uninterrupted, prefect_api, tmp_path, monkeypatch
):
    """First attempt: the (isolated) training process SIGKILLs itself after step 14, two steps
    past the epoch-end checkpoint at step 12; the task's retry resumes there and completes."""
    from prefect import flow
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from modalops.register.tracking import start_pipeline_run
    from modalops.runs import RunContext
    from tasks.train import train_classifier

    store, manifest = _dataset(tmp_path / "store")
    cfg = TrainConfig(**CFG, isolated=True)  # the worker is a child process: it can die alone
    marker = tmp_path / "killed-once"
    monkeypatch.setenv(FAULT_ENV, "kill@14")
    monkeypatch.setenv(FAULT_ONCE_ENV, str(marker))
    run = RunContext(store_uri=store.root, endpoint_url=None, run_key="resume-test")
    tracking = start_pipeline_run(
        f"sqlite:///{tmp_path / 'mlflow.db'}", "resume", run_name="t", tags={}, config={}
    )
    task = train_classifier.with_options(retry_delay_seconds=0)

    @flow(name="resume-retry")
    def train_once():
        return task(run, manifest, cfg, "fused", STREAMS, tracking, return_state=True)

    with temporary_settings({PREFECT_API_URL: prefect_api}):
        state = train_once()
    assert state.is_completed(), state
    assert state.state_details.task_run_id is not None
    result = state.result()
    assert marker.read_text().strip() == "kill@14"  # the first attempt really died there
    assert result.resumed_from_step == 12  # the epoch-end checkpoint of epoch 1
    from prefect.client.orchestration import get_client

    async def attempts():
        async with get_client() as client:
            return (await client.read_task_run(state.state_details.task_run_id)).run_count

    import asyncio

    with temporary_settings({PREFECT_API_URL: prefect_api}):
        assert asyncio.run(attempts()) == 2
    straight = uninterrupted["result"]
    for name in ("val_macro_f1", "val_loss", "best_epoch", "epochs"):
        assert result.metrics[name] == pytest.approx(straight.metrics[name], abs=TOLERANCE), name
    diff = _max_abs_diff(_weights(store, result), _weights(uninterrupted["store"], straight))
    # equal up to float32 rounding: intra-op threads may sum in another order after a restart
    assert diff <= TOLERANCE
