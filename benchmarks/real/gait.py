"""Case `gait`: three body-worn accelerometers (Daphnet S06R02E0: ankle, thigh, trunk at 64 Hz).

One patient stands for about 20 s, then walks for 90 s: steps repeat at a near-constant period,
so a lag wrong by a step or a stride fits almost as well as the right one. Sessions are 30 s
excerpts starting every 6 s (they overlap: the recording is 110 s long). The ankle is the
reference; the thigh sensor's clock is off by up to +-4 s with nothing to go on; the trunk
sensor wrote its start time in its own file (`trunk.json`, good to +-0.2 s) and searches
+-0.35 s around it. Labels (standing / walking) are derived from the ankle's movement, as the
recording carries no freezing episodes: this case measures alignment only.
"""

from __future__ import annotations

import json
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
from benchmarks.real.sources import daphnet

RATE = 64.0
SESSION_S = 30.0
STEP_S = 6.0
TOLERANCE_S = 0.05
SENSORS = {"ankle": "ankle", "thigh": "leg", "trunk": "trunk"}
AXES = ["horiz_fwd", "vert", "horiz_lateral"]


def walking_from(df: pd.DataFrame) -> float:
    """When walking starts: the first second from which the ankle moves (5x the first 5 s' level)
    for five seconds running."""
    a = df[[f"ankle_{x}" for x in AXES]].to_numpy(float)
    m = np.linalg.norm(a - a.mean(0), axis=1)
    win = int(RATE)
    sd = np.array([m[i : i + win].std() for i in range(0, m.size - win, win)])
    moving = sd > 5 * np.median(sd[:5])
    run = np.array([moving[k : k + 5].all() for k in range(moving.size)])
    return float(np.argmax(run))


def build(out: Path, cache: Path, sessions: int = 14, seed: int = 3) -> CaseOutput:
    rng = np.random.default_rng(seed)
    df = daphnet(cache)
    t_all = df["t"].to_numpy()
    walk = walking_from(df)
    w = CaseWriter(out, "gait")
    for i in range(min(sessions, int((t_all[-1] - SESSION_S) // STEP_S) + 1)):
        sid = f"s{i:02d}"
        t0 = i * STEP_S
        sel = (t_all >= t0) & (t_all < t0 + SESSION_S)
        t = t_all[sel] - t0
        folder = w.folder(sid)
        clocks = {"thigh": draw_clock(rng, 4.0, 50.0), "trunk": draw_clock(rng, 4.0, 50.0)}
        for name, col in SENSORS.items():
            x = df.loc[sel, [f"{col}_{a}" for a in AXES]].to_numpy(float)
            if name == "ankle":
                d, v = t, x
            else:
                d, t_ref = device_times(
                    clocks[name], rng.uniform(0, 1), t[-1] - rng.uniform(0, 1), RATE
                )
                v = resample(t, x, t_ref)
            pd.DataFrame({"t": d, "x": v[:, 0], "y": v[:, 1], "z": v[:, 2]}).to_csv(
                folder / f"{name}.csv", index=False, float_format="%.5f")  # fmt: skip
        # the trunk's own record of when it started (on the ankle's clock), good to 0.2 s
        trunk_start = -clocks["trunk"].offset_s + float(rng.uniform(-0.2, 0.2))
        (folder / "trunk.json").write_text(json.dumps({"start_time_s": round(trunk_start, 3)}))
        cut = float(np.clip(walk - t0, 0.0, SESSION_S))
        w.labels(
            sid,
            [(0.0, cut, "standing"), (cut, SESSION_S, "walking")]
            if cut > 0
            else [(0.0, SESSION_S, "walking")],
        )
        w.session(sid, clocks, excerpt_start_s=t0)
    ts = lambda: {"time_column": "t", "channels": ["x", "y", "z"], "sample_rate": RATE}  # noqa: E731
    spec = {
        "name": "real-gait",
        "sessions": {"table": "sessions.csv", "id_column": "session_id", "folder": "sessions/{session_id}"},
        "reference": "ankle",
        "streams": {
            "ankle": {"kind": "timeseries", "path": "ankle.csv", "params": ts(), "cue": "magnitude_envelope"},
            "thigh": {"kind": "timeseries", "path": "thigh.csv", "params": ts(), "cue": "magnitude_envelope",
                      "clock": {"initial": "zero", "search_s": 6.0}},
            "trunk": {"kind": "timeseries", "path": "trunk.csv", "params": ts(), "cue": "magnitude_envelope",
                      "clock": {"start_file": "trunk.json", "search_s": 0.35}},
        },
        "labels": {"classes": ["standing", "walking"], "source": "intervals", "path": "labels.csv"},
    }  # fmt: skip
    table = w.finish(spec)
    return CaseOutput("gait", w.raw, w.truth, "ankle", ["thigh", "trunk"], TOLERANCE_S, 1 / RATE,
                      ["events repeating with a near-constant period (steps)", "a per-device start-time file"], table)  # fmt: skip
