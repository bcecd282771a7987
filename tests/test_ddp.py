"""DDP with devices=2 on CPU (gloo), launched from inside this long-running pytest process."""

from __future__ import annotations

import json
import os
import threading

import psutil
import pytest

from modalops.config.train import TrainConfig
from modalops.store import LocalStore
from modalops.testing.shards import write_test_shards
from modalops.train.models import load_classifier
from modalops.train.training import SHARD_LOG_DIR, train_model
from modalops_demo.names import demo_spec


@pytest.mark.slow  # ~25 s: two fresh Python processes import torch + Lightning
def test_ddp_two_cpu_ranks_train_on_disjoint_shards(tmp_path):
    store = LocalStore(tmp_path / "store")
    manifest = write_test_shards(store, demo_spec(), samples_per_shard=6)
    assert len(manifest.splits["train"].shards) >= 4
    cfg = TrainConfig(
        max_epochs=2,
        batch_size=4,
        hidden_dim=4,
        devices=2,
        strategy="ddp",
        streams=["vibration", "notes"],
    )
    with _listeners_of_this_process_tree() as listening:
        result = train_model(
            store, manifest, cfg, "fused", ["vibration", "notes"], tmp_path / "work"
        )
    # the rendezvous store and every socket the ranks listened on: loopback only (before the
    # loopback store, rank 0's TCPStore listened on '::')
    assert listening, "the sampler saw no listening socket: it would not notice '::' either"
    assert {ip for _pid, ip, _port in listening} == {"127.0.0.1"}, listening

    assert store.exists(result.checkpoint_key)
    model, info = load_classifier(store.get_bytes(result.checkpoint_key))
    assert model.streams == ["vibration", "notes"] and info["meta"]["train_config"]["devices"] == 2
    assert result.metrics["epochs"] == 2

    shards = result.ranks_shards
    assert set(shards) == {0, 1}
    # within every epoch the two ranks opened disjoint sets of training shards
    log_dir = tmp_path / "work" / "fused" / SHARD_LOG_DIR
    opened: dict[tuple[int, int], set[str]] = {}
    for rank in (0, 1):
        for line in (log_dir / f"rank{rank}.jsonl").read_text().splitlines():
            row = json.loads(line)
            if row["split"] == "train":
                opened.setdefault((row["epoch"], rank), set()).add(row["url"])
    for epoch in (0, 1):
        a, b = opened[(epoch, 0)], opened[(epoch, 1)]
        assert a and b and not a & b
        assert a | b == set(manifest.shard_urls("train"))


class _listeners_of_this_process_tree:
    """Every (pid, ip, port) listening socket that this process or its descendants opened
    while the block ran, sampled every 50 ms (those open before it are left out)."""

    def __enter__(self) -> set[tuple[int, str, int]]:
        self.seen: set[tuple[int, str, int]] = set()
        self.before = self._now()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self.seen

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()

    @staticmethod
    def _now() -> set[tuple[int, str, int]]:
        me = psutil.Process(os.getpid())
        pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
        return {
            (c.pid, c.laddr.ip, c.laddr.port)
            for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids
        }

    def _sample(self) -> None:
        while not self.done.wait(0.05):
            self.seen |= self._now() - self.before
