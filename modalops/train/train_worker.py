"""Training process entry: `python -m modalops.train.train_worker JOB.json [--commit] [--work-dir DIR]`.

Three launchers run it (see training.py, docs/training.md):
- train_model, for DDP on one machine (devices > 1) or an isolated run: Lightning's `ddp`
  strategy re-runs this same command for ranks 1..N-1, so every rank reads the same job;
- torchrun on every node (num_nodes > 1), e.g. a Kubeflow PyTorchJob: torchrun sets RANK,
  WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT, which Lightning reads (its
  TorchElastic environment) against the job's num_nodes x devices. Pass `--commit` so that
  rank 0 uploads the model and its cache entry itself; there is no caller to do it.

JOB may be a local path or an object URL (s3://bucket/key) that every node can read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modalops.train.train_worker")
    parser.add_argument("job", help="job.json written by modalops.train.training.write_job")
    parser.add_argument(
        "--commit", action="store_true", help="rank 0 uploads the finished model to the store"
    )
    parser.add_argument("--work-dir", help="local scratch folder (default: the job's work_dir)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        from modalops.store import read_stream

        with read_stream(args.job, os.environ.get("AWS_ENDPOINT_URL")) as fh:
            job = json.loads(fh.read())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"{args.job}: cannot read the training job ({exc})", file=sys.stderr)
        return 2
    except Exception as exc:  # an unreachable store: say which job, not three libraries down
        print(f"{args.job}: cannot read the training job ({exc})", file=sys.stderr)
        return 2
    if args.work_dir:
        job["work_dir"] = os.path.abspath(args.work_dir)
    os.makedirs(job["work_dir"], exist_ok=True)
    # heavy imports only once the job is known to be readable
    from modalops.train.training import commit_job, fit

    result = fit(job)
    if args.commit and result is not None:  # fit returns the result on global rank 0 only
        trained = commit_job(job)
        print(f"modalops: committed {trained.model_id} as {trained.checkpoint_key}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
