"""Subprocess entry for DDP training: `python -m modalops.train_worker <spec.json>` (see training.py).

Lightning's `ddp` strategy re-runs this same command for ranks 1..N-1 with their rank in the
environment, so every rank reads the same spec file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m modalops.train_worker SPEC.json", file=sys.stderr)
        return 2
    spec_path = Path(argv[0])
    try:
        spec = json.loads(spec_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"{spec_path}: cannot read the training spec ({exc})", file=sys.stderr)
        return 2
    from modalops.training import fit  # heavy imports only once the spec is known to be readable

    fit(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
