"""Resume checkpoints in the object store: written every N steps and at each epoch end, read on restart.

A training's resume state lives under its cache key folder (`.../models/<id>/<key>/resume/`):
`last.ckpt` is Lightning's full checkpoint (weights, optimizer, loop counters, callback state),
`last.json` says which step and epoch it holds. Both are uploaded whole (store.put_bytes), the
json after the checkpoint. The checkpoint is read with `weights_only=True`; everything in it is
tensors and plain values, our callbacks' state included (see RngState).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from modalops.store import ObjectStore, join_key

RESUME_DIR = "resume"
RESUME_CKPT = "last.ckpt"
RESUME_STATE = "last.json"
# test and chaos hook: "kill@K" SIGKILLs rank 0 after optimizer step K, "stall@K" makes it sleep
# there (for an outside kill); with FAULT_ONCE set to a path, only while that file is absent
FAULT_ENV = "MODALOPS_TRAIN_FAULT"
FAULT_ONCE_ENV = "MODALOPS_TRAIN_FAULT_ONCE"


def resume_prefix(cache_prefix: str) -> str:
    return join_key(cache_prefix, RESUME_DIR)


def resume_state(store: ObjectStore, prefix: str) -> dict[str, Any] | None:
    """The json beside a resume checkpoint ({"step", "epoch", "saved_at"}), or None."""
    key = join_key(prefix, RESUME_STATE)
    if not store.exists(key) or not store.exists(join_key(prefix, RESUME_CKPT)):
        return None
    return json.loads(store.get_text(key))


def fetch_resume(store: ObjectStore, prefix: str, local_dir: Path) -> tuple[Path, dict] | None:
    """Download the resume checkpoint to `local_dir`: (its path, its json), or None if none."""
    state = resume_state(store, prefix)
    if state is None:
        return None
    path = Path(local_dir) / RESUME_CKPT
    path.parent.mkdir(parents=True, exist_ok=True)
    store.get_file(join_key(prefix, RESUME_CKPT), path)
    return path, state


def clear_resume(store: ObjectStore, prefix: str) -> None:
    """Drop the resume state once the model is committed (json first: it marks the pair valid)."""
    for name in (RESUME_STATE, RESUME_CKPT):
        key = join_key(prefix, name)
        if store.exists(key):
            store.delete(key)


class ResumeCheckpoints(Callback):
    """Saves Lightning's full checkpoint every `every_n_steps` optimizer steps and at each epoch
    end; rank 0 uploads it. Every rank calls save_checkpoint (it synchronises under DDP)."""

    def __init__(self, store: ObjectStore, prefix: str, every_n_steps: int, local_dir: Path):
        self.store, self.prefix = store, prefix
        self.every_n_steps = every_n_steps
        self.local_dir = Path(local_dir)
        self._last_step = -1
        self._epoch = 0
        self._batches_in_epoch: int | None = None  # of the current epoch, at a step checkpoint

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # the epoch-end checkpoint follows; a step one here would replay the epoch end
        if step > 0 and step % self.every_n_steps == 0 and step != self._last_step:
            self._batches_in_epoch = batch_idx + 1
            self._save(trainer, "step")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._batches_in_epoch = None  # the restored run starts the next epoch afresh
        self._save(trainer, "epoch_end")

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "batches_in_epoch": self._batches_in_epoch}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        # Lightning restores its batch counter but cannot fast-forward an iterable dataset:
        # the DataModule skips this many batches of that epoch (ShardStream.skip_batches)
        state = checkpoint.get("callbacks", {}).get(self.state_key) or {}
        datamodule = trainer.datamodule
        if state.get("batches_in_epoch") and hasattr(datamodule, "resume_skip"):
            datamodule.resume_skip = (int(state["epoch"]), int(state["batches_in_epoch"]))

    def _save(self, trainer, reason: str) -> None:
        self._last_step = trainer.global_step
        self._epoch = trainer.current_epoch
        path = self.local_dir / f"{RESUME_CKPT}.part"
        # weights_only here is the *save* flag: False = the full state (optimizer, loops,
        # callbacks), all tensors and plain values, which the restore reads weights_only=True
        trainer.save_checkpoint(path, weights_only=False)
        if trainer.global_rank != 0:
            return
        self.store.put_bytes(join_key(self.prefix, RESUME_CKPT), path.read_bytes())
        state = {
            "step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "reason": reason,
            "saved_at": time.time(),
        }
        self.store.put_text(join_key(self.prefix, RESUME_STATE), json.dumps(state))


class RngState(Callback):
    """Carries the global RNGs (torch, CUDA, Python, NumPy) through a resume checkpoint, so
    modality dropout and dropout draw the same numbers after a restart. The state is put back
    at the first training batch after the restore, i.e. where it was taken: building loaders
    and validation in between draw nothing from these generators (the loaders own theirs)."""

    def __init__(self):
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        import numpy as np

        version, internal, gauss = random.getstate()
        np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
        state = {
            "torch": torch.get_rng_state(),
            "python": [version, list(internal), gauss],
            "numpy": [
                np_name,
                torch.from_numpy(np_keys.astype("int64")),
                np_pos,
                np_has_gauss,
                np_gauss,
            ],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = dict(state_dict)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._pending is None:
            return
        import numpy as np

        state, self._pending = self._pending, None
        torch.set_rng_state(state["torch"])
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype("uint32"), pos, has_gauss, cached))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class FaultInjection(Callback):
    """Kills or stalls rank 0 after a given optimizer step when FAULT_ENV asks (tests, chaos)."""

    def __init__(self, spec: str | None = None, once_marker: str | None = None):
        spec = spec if spec is not None else os.environ.get(FAULT_ENV, "")
        self.once_marker = once_marker or os.environ.get(FAULT_ONCE_ENV) or None
        self.action, self.step = None, -1
        if spec:
            action, _, step = spec.partition("@")
            if action not in ("kill", "stall") or not step.isdigit():
                raise ValueError(f"{FAULT_ENV}={spec!r}: expected kill@STEP or stall@STEP")
            self.action, self.step = action, int(step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.action is None or trainer.global_rank != 0 or trainer.global_step != self.step:
            return
        if self.once_marker:
            if Path(self.once_marker).exists():
                return
            Path(self.once_marker).write_text(f"{self.action}@{self.step}\n")
        if self.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        while True:  # stall: wait for someone to kill us
            time.sleep(1)
