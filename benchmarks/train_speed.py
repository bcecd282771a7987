"""Training throughput: fused + 4 unimodal models on ~2,000 one-second samples, CPU, in-process.

    .venv/bin/python benchmarks/train_speed.py --sessions 20 --windows 100 --epochs 10

Target (issue 2 demo budget): all five models in about 2 minutes on 2 CPU cores. Data are the
tiny synthetic windows of tests/test_shards.py (labels visible in camera/audio/vibration).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_shards import make_rows, put_parts  # noqa: E402

from modalops.config.pipeline import ShardConfig  # noqa: E402
from modalops.config.train import TrainConfig  # noqa: E402
from modalops.shards import write_shards  # noqa: E402
from modalops.store import LocalStore  # noqa: E402
from modalops.training import train_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--windows", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp) / "store")
        t0 = time.perf_counter()
        keys = put_parts(store, make_rows(args.sessions, args.windows, sites=("A", "B")), n_parts=4)
        manifest = write_shards(store, keys, None, ShardConfig(samples_per_shard=256))
        print(
            f"data+shards: {time.perf_counter() - t0:.1f} s, "
            f"{ {s: i.n_samples for s, i in manifest.splits.items()} }"
        )
        cfg = TrainConfig(max_epochs=args.epochs, batch_size=args.batch, hidden_dim=args.hidden)
        jobs = [("fused", list(cfg.modalities))] + [(m, [m]) for m in cfg.modalities]
        total = time.perf_counter()
        print(f"{'model':10s} {'seconds':>8s} {'samples/s':>10s} {'val_F1':>7s} {'params':>8s}")
        for model_id, mods in jobs:
            r = train_model(store, manifest, cfg, model_id, mods, Path(tmp) / "work")
            m = r.metrics
            print(
                f"{model_id:10s} {m['seconds']:8.1f} {m['samples_per_s']:10.0f} "
                f"{m['val_macro_f1']:7.3f} {int(m['n_params']):8d}"
            )
        print(f"all five models: {time.perf_counter() - total:.1f} s")


if __name__ == "__main__":
    main()
