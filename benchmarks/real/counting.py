"""Case `counting`: a display flashes digits at a near-constant pace while a voice counts along.

Events repeat every 1.2 s (+-2%): a digit shown while it is spoken (0.3-0.8 s), then blank (class
none), so a lag wrong by one period fits almost as well as the right one. The microphone wrote its own start time in a
per-device file (`mic.json`, field `start_time_s`, good to +-0.25 s) and the spec declares it as
the starting guess with a search of +-0.55 s, less than half a period: the file rules out the
aliases, the data refines within it. Speech at 0..10 dB SNR.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.real.compose import CaseOutput, CaseWriter
from benchmarks.real.speech import (
    FPS,
    spec,
    speech_sessions,
    write_session,
)

DURATION_S = 40.0
PERIOD_S = 1.2
TOLERANCE_S = 0.1  # half a frame period


def schedule(rng: np.random.Generator, duration_s: float) -> list[tuple[float, int]]:
    """A digit every 1.2 s (+-2%), counting up from a random digit."""
    onsets, t, digit = [], 0.5, int(rng.integers(0, 10))
    while t < duration_s - 1.0:
        onsets.append((t, digit))
        t += PERIOD_S * float(rng.uniform(0.98, 1.02))
        digit = (digit + 1) % 10
    return onsets


def build(out: Path, cache: Path, sessions_per_split: int = 6, seed: int = 2) -> CaseOutput:
    rng = np.random.default_rng(seed)
    w = CaseWriter(out, "counting")
    for split, sid, voice, images in speech_sessions(sessions_per_split):
        start = float(rng.uniform(-4.0, 4.0))
        snr = float(rng.uniform(0.0, 10.0))
        clock = write_session(w, sid, rng, schedule(rng, DURATION_S), DURATION_S, voice, snr,
                              mic_start_s=start, mic_ppm=float(rng.uniform(-30, 30)),
                              images=images)  # fmt: skip
        # what the recorder believed: its start time, good to a quarter second
        belief = start + float(rng.uniform(-0.25, 0.25))
        (w.folder(sid) / "mic.json").write_text(
            json.dumps({"device": "mic", "start_time_s": round(belief, 3)})
        )
        w.session(sid, {"mic": clock}, voice=voice, archive_split=split, snr_db=round(snr, 2))
    mic_clock = {"start_file": "mic.json", "start_field": "start_time_s", "search_s": 0.55}
    table = w.finish(spec("real-counting", mic_clock))
    return CaseOutput("counting", w.raw, w.truth, "display", ["mic"], TOLERANCE_S, 1 / FPS,
                      ["events repeating with a near-constant period", "a per-device start-time file"], table)  # fmt: skip
