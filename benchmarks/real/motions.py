"""Case `motions`: a watch's accelerometer and gyroscope (BasicMotions), continuous signals at 10 Hz.

Each session strings five 10 s recordings of one archive split together (50 s, five activity
bouts). The accelerometer is the reference; the gyroscope gets its own clock (offset up to
+-3 s, drift up to +-50 ppm), as if it were a second device. There are no on/off events: the
cue is the movement itself. Train sessions come from the archive's TRAIN recordings, test
sessions from its TEST recordings (disjoint recordings; the archive names no subjects).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.real.compose import (
    CaseOutput,
    CaseWriter,
    device_times,
    draw_clock,
    resample,
)
from benchmarks.real.sources import basic_motions

RATE = 10.0
BOUTS = 5
BOUT_S = 10.0
CLASSES = ["Standing", "Walking", "Running", "Badminton"]
TOLERANCE_S = 0.1  # one sample period


def build(out: Path, cache: Path, sessions_per_split: int = 8, seed: int = 0) -> CaseOutput:
    rng = np.random.default_rng(seed)
    data = basic_motions(cache)
    w = CaseWriter(out, "motions")
    for split, (cases, labels) in data.items():
        order = rng.permutation(len(cases))
        for i in range(sessions_per_split):
            picks = order[(i * BOUTS) % len(cases) :][:BOUTS]
            if len(picks) < BOUTS:
                picks = rng.choice(len(cases), BOUTS, replace=False)
            sid = f"{split}-{i:02d}"
            x = np.concatenate([cases[j] for j in picks], axis=1).T  # (n, 6) on the watch clock
            t = np.arange(x.shape[0]) / RATE
            clock = draw_clock(rng, 3.0, 50.0)
            folder = w.folder(sid)
            pd.DataFrame({"t": t, "x": x[:, 0], "y": x[:, 1], "z": x[:, 2]}).to_csv(
                folder / "accel.csv", index=False, float_format="%.6f")  # fmt: skip
            # the gyroscope starts and stops up to 1 s apart from the accelerometer
            d, t_ref = device_times(clock, rng.uniform(0, 1), t[-1] - rng.uniform(0, 1), RATE)
            g = resample(t, x[:, 3:], t_ref)
            pd.DataFrame({"t": d, "gx": g[:, 0], "gy": g[:, 1], "gz": g[:, 2]}).to_csv(
                folder / "gyro.csv", index=False, float_format="%.6f")  # fmt: skip
            w.labels(sid, [(k * BOUT_S, (k + 1) * BOUT_S, labels[j]) for k, j in enumerate(picks)])
            w.session(sid, {"gyro": clock}, archive_split=split)
    spec = {
        "name": "real-motions",
        "sessions": {"table": "sessions.csv", "id_column": "session_id", "folder": "sessions/{session_id}"},
        "reference": "accel",
        "streams": {
            "accel": {"kind": "timeseries", "path": "accel.csv",
                      "params": {"time_column": "t", "channels": ["x", "y", "z"], "sample_rate": RATE},
                      "cue": "magnitude_envelope", "clock": {"initial": "zero", "estimate": False}},
            "gyro": {"kind": "timeseries", "path": "gyro.csv",
                     "params": {"time_column": "t", "channels": ["gx", "gy", "gz"], "sample_rate": RATE},
                     "cue": "magnitude_envelope", "clock": {"initial": "zero", "search_s": 5.0}},
        },
        "labels": {"classes": CLASSES, "source": "intervals", "path": "labels.csv"},
        "metadata": {"columns": ["archive_split"], "slices": ["archive_split"]},
    }  # fmt: skip
    table = w.finish(spec)
    return CaseOutput("motions", w.raw, w.truth, "accel", ["gyro"], TOLERANCE_S, 1 / RATE,
                      ["continuous signals, no on/off events", "sensors at 10 Hz"], table)  # fmt: skip
