"""Training throughput: the fused model + one baseline per stream on ~2,000 samples, CPU, in-process.

    .venv/bin/python benchmarks/train_speed.py --sessions 20 --windows 100 --epochs 10
    .venv/bin/python benchmarks/train_speed.py --spec other   # a non-demo spec (2 grey cams, IMU, text)

Target (issue 2 demo budget): all five demo models in about 2 minutes on 2 CPU cores. Data are
the synthetic windows of modalops/testing/shards.py (every stream shows its window's class).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from modalops.config.pipeline import ShardConfig
from modalops.config.train import TrainConfig
from modalops.shard import write_shards
from modalops.store import LocalStore
from modalops.testing.shards import make_rows, other_spec, put_parts
from modalops.train.training import model_plan, train_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--windows", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--window-s", type=float, default=1.0)
    ap.add_argument("--spec", choices=["demo", "other"], default="demo")
    ap.add_argument(
        "--no-decode-cache", action="store_true", help="decode every epoch (train.decode_cache off)"
    )
    args = ap.parse_args()
    if args.spec == "demo":
        from modalops_demo.names import demo_spec

        spec = demo_spec()
    else:
        spec = other_spec()
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp) / "store")
        t0 = time.perf_counter()
        rows = make_rows(spec, args.sessions, args.windows, window_s=args.window_s)
        keys = put_parts(store, rows, n_parts=4)
        manifest = write_shards(
            store, spec, keys, None, ShardConfig(samples_per_shard=256), window_s=args.window_s
        )
        print(
            f"data+shards: {time.perf_counter() - t0:.1f} s, "
            f"{ {s: i.n_samples for s, i in manifest.splits.items()} }"
        )
        cfg = TrainConfig(
            max_epochs=args.epochs,
            batch_size=args.batch,
            hidden_dim=args.hidden,
            decode_cache=not args.no_decode_cache,
            decode_cache_dir=str(Path(tmp) / "decoded"),  # cold at the start of every run
        )
        plan = model_plan(spec, cfg)
        total = time.perf_counter()
        print(f"{'model':12s} {'seconds':>8s} {'samples/s':>10s} {'val_F1':>7s} {'params':>8s}")
        for model_id, streams in plan:
            r = train_model(store, manifest, cfg, model_id, streams, Path(tmp) / "work")
            m = r.metrics
            print(
                f"{model_id:12s} {m['seconds']:8.1f} {m['samples_per_s']:10.0f} "
                f"{m['val_macro_f1']:7.3f} {int(m['n_params']):8d}"
            )
        print(f"all {len(plan)} models: {time.perf_counter() - total:.1f} s")


if __name__ == "__main__":
    main()
