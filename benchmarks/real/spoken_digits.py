"""Case `spoken_digits`: a display and a microphone; digits spoken in noise at -5..0 dB SNR.

Each 60 s session alternates spoken digits (the display shows a handwritten one while a voice says
it) with pauses of the `none` class, at irregular intervals. The microphone's clock is off by up to
+-6 s with up to +-30 ppm drift and nothing in the session says by how much. Train sessions use
six espeak-ng voices and one half of the handwritten digits, test sessions six other voices and
the other half.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.real.compose import CaseOutput, CaseWriter
from benchmarks.real.speech import FPS, TEST_VOICES, TRAIN_VOICES, Event, images_by_digit, spec, write_session

DURATION_S = 60.0
TOLERANCE_S = 0.1  # half a frame period


def schedule(rng: np.random.Generator, duration_s: float) -> list[Event]:
    """Spoken digits of 0.8-1.4 s between pauses of 0.6-2.5 s (class none)."""
    events, t = [], 0.0
    while t < duration_s:
        pause = float(rng.uniform(0.6, 2.5))
        events.append(Event(t, min(t + pause, duration_s), -1))
        t += pause
        if t >= duration_s - 1.5:
            break
        on = float(rng.uniform(0.8, 1.4))
        events.append(Event(t, t + on, int(rng.integers(0, 10))))
        t += on
    if events[-1].end_s < duration_s:
        events.append(Event(events[-1].end_s, duration_s, -1))
    return events


def build(out: Path, cache: Path, sessions_per_split: int = 12, seed: int = 1) -> CaseOutput:
    rng = np.random.default_rng(seed)
    w = CaseWriter(out, "spoken_digits")
    for half, (split, voices) in enumerate((("train", TRAIN_VOICES), ("test", TEST_VOICES))):
        images = images_by_digit(half)
        for i in range(sessions_per_split):
            sid, voice = f"{split}-{i:02d}", voices[i % len(voices)]
            events = schedule(rng, DURATION_S)
            snr = float(rng.uniform(-5.0, 0.0))
            clock = write_session(w, sid, rng, events, DURATION_S, voice, snr,
                                  mic_start_s=float(rng.uniform(-6.0, 6.0)),
                                  mic_ppm=float(rng.uniform(-30, 30)), images=images)  # fmt: skip
            w.session(sid, {"mic": clock}, voice=voice, archive_split=split, snr_db=round(snr, 2))
    table = w.finish(spec("real-spoken-digits", {"initial": "zero", "search_s": 8.0}))
    return CaseOutput("spoken_digits", w.raw, w.truth, "display", ["mic"], TOLERANCE_S, 1 / FPS,
                      ["speech in noise at -5..0 dB SNR", "a none pause class"], table)  # fmt: skip
