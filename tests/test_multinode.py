"""Multi-node: the training worker launched by torchrun as two 'nodes' on loopback (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modalops.config.train import TrainConfig
from modalops.services import free_port
from modalops.store import LocalStore
from modalops.testing.shards import write_test_shards
from modalops.train.models import load_classifier
from modalops.train.resume import resume_state
from modalops.train.training import SHARD_LOG_DIR, find_trained, write_job
from modalops_demo.names import demo_spec

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # ~30 s: two torchrun agents, each starting a worker that imports Lightning
def test_two_torchrun_nodes_train_on_disjoint_shards_and_rank0_commits(tmp_path):
    store = LocalStore(tmp_path / "store")
    manifest = write_test_shards(store, demo_spec(), samples_per_shard=6)
    assert len(manifest.splits["train"].shards) >= 4
    streams = ["vibration", "notes"]
    cfg = TrainConfig(
        max_epochs=2,
        batch_size=4,
        hidden_dim=4,
        num_nodes=2,
        devices=1,
        strategy="ddp",
        streams=streams,
        baselines=False,
        checkpoint_every_n_steps=2,
    )
    job_path = write_job(store, manifest, cfg, "fused", streams, tmp_path / "work")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    procs, logs = [], []
    for node_rank in (0, 1):
        log = (tmp_path / f"node{node_rank}.log").open("w")
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "torch.distributed.run",
                    "--nnodes",
                    "2",
                    "--nproc-per-node",
                    "1",
                    "--node-rank",
                    str(node_rank),
                    "--master-addr",
                    "127.0.0.1",
                    "--master-port",
                    str(port),
                    "-m",
                    "modalops.train.train_worker",
                    str(job_path),
                    "--commit",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )  # fmt: skip
        )
    try:
        codes = [p.wait(timeout=150) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    node_logs = [(tmp_path / f"node{r}.log").read_text() for r in (0, 1)]
    assert codes == [0, 0], "\n\n".join(node_logs)[-6000:]
    assert "modalops: committed fused" in node_logs[0]
    assert "modalops: committed" not in node_logs[1]  # only rank 0 uploads

    trained = find_trained(store, manifest, cfg, "fused", streams)
    assert trained is not None and trained.cache_hit
    model, info = load_classifier(store.get_bytes(trained.checkpoint_key))
    assert model.streams == streams
    assert info["meta"]["train_config"]["num_nodes"] == 2
    assert trained.metrics["epochs"] == 2
    job = json.loads(job_path.read_text())
    assert resume_state(store, job["resume_prefix"]) is None  # cleared after the commit

    # within every epoch the two nodes' ranks opened disjoint sets of training shards
    log_dir = Path(job["work_dir"]) / SHARD_LOG_DIR
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


def test_the_pytorchjob_example_launches_this_worker_with_torchrun():
    import shlex

    import yaml

    from modalops.train.train_worker import build_parser

    k8s = REPO / "infra" / "k8s"
    job = yaml.safe_load((k8s / "training" / "pytorchjob-train.yaml").read_text())
    config_map = yaml.safe_load((k8s / "configmap.yaml").read_text())
    assert job["apiVersion"] == "kubeflow.org/v1" and job["kind"] == "PyTorchJob"
    assert job["metadata"]["namespace"] == config_map["metadata"]["namespace"]
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert set(replicas) == {"Master", "Worker"}
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] >= 1
    for role, spec in replicas.items():
        (container,) = spec["template"]["spec"]["containers"]
        assert container["name"] == "pytorch", role  # the name the operator expects
        words = shlex.split(" ".join(container["args"]))
        assert words[:2] == ["exec", "torchrun"], role
        flags = dict(zip(words[2:], words[3:], strict=False))
        assert flags["--nproc-per-node"] == "1"
        for flag, env in (("--nnodes", "$PET_NNODES"), ("--node-rank", "$PET_NODE_RANK"),
                          ("--master-addr", "$PET_MASTER_ADDR")):  # fmt: skip
            assert flags[flag] == env, (role, flag)
        module_at = words.index("-m")
        assert words[module_at + 1] == "modalops.train.train_worker"
        args = build_parser().parse_args(words[module_at + 2 :])  # the worker accepts them
        assert args.commit and args.work_dir == "/scratch/train"
        refs = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
        assert refs == [config_map["metadata"]["name"]]
        assert {"AWS_ENDPOINT_URL", "MLFLOW_TRACKING_URI"} <= set(config_map["data"])
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
