"""Subprocess entry for DDP training: `python -m modalops.train.train_worker <job.json>` (see training.py).

Lightning's `ddp` strategy re-runs this same command for ranks 1..N-1 with their rank in the
environment, so every rank reads the same job file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m modalops.train.train_worker JOB.json", file=sys.stderr)
        return 2
    job_path = Path(argv[0])
    try:
        job = json.loads(job_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"{job_path}: cannot read the training job ({exc})", file=sys.stderr)
        return 2
    # heavy imports only once the job is known to be readable
    from modalops.train.training import fit

    fit(job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
