"""Case `spoken_digits`: a display and a microphone; digits spoken in noise at -5..0 dB SNR.

Each 60 s session alternates spoken digits (the display shows a handwritten one exactly while a
voice says it, like a caption) with pauses of the `none` class, at irregular intervals. The microphone's clock is off by up to
+-6 s with up to +-30 ppm drift and nothing in the session says by how much. Train sessions use
six espeak-ng voices and one half of the handwritten digits, test sessions six other voices and
the other half.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.real.compose import CaseOutput, CaseWriter
from benchmarks.real.speech import (
    FPS,
    spec,
    speech_sessions,
    write_session,
)

DURATION_S = 60.0
TOLERANCE_S = 0.1  # half a frame period


def schedule(rng: np.random.Generator, duration_s: float) -> list[tuple[float, int]]:
    """Digit onsets 1.4-3.2 s apart (speech lasts 0.3-0.8 s; the rest is the none class)."""
    onsets, t = [], float(rng.uniform(0.5, 2.0))
    while t < duration_s - 1.0:
        onsets.append((t, int(rng.integers(0, 10))))
        t += float(rng.uniform(1.4, 3.2))
    return onsets


def build(out: Path, cache: Path, sessions_per_split: int = 12, seed: int = 1) -> CaseOutput:
    rng = np.random.default_rng(seed)
    w = CaseWriter(out, "spoken_digits")
    for split, sid, voice, images in speech_sessions(sessions_per_split):
        onsets = schedule(rng, DURATION_S)
        snr = float(rng.uniform(-5.0, 0.0))
        clock = write_session(w, sid, rng, onsets, DURATION_S, voice, snr,
                              mic_start_s=float(rng.uniform(-6.0, 6.0)),
                              mic_ppm=float(rng.uniform(-30, 30)), images=images)  # fmt: skip
        w.session(sid, {"mic": clock}, voice=voice, archive_split=split, snr_db=round(snr, 2))
    table = w.finish(spec("real-spoken-digits", {"initial": "zero", "search_s": 8.0}))
    return CaseOutput("spoken_digits", w.raw, w.truth, "display", ["mic"], TOLERANCE_S, 1 / FPS,
                      ["speech in noise at -5..0 dB SNR", "a none pause class"], table)  # fmt: skip
