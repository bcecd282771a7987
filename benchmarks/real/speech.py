"""Display + microphone sessions: a screen shows a handwritten digit while a voice says it in noise.

Shared by the `spoken_digits` and `counting` cases, which differ in their event schedule, their
noise level and what the microphone knows of its clock. Frames are scikit-learn's handwritten
digits (8x8, scaled to 32x32 grey PNGs at 5 fps, with pixel noise); speech is espeak-ng saying the
digit (one voice per session: the voices are the subjects, split between train and test);
noise is a babble of four espeak-ng talkers reading unrelated words plus pink noise, mixed to a
drawn signal-to-noise ratio measured over the spoken samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.real.compose import CaseWriter, Clock, wav_bytes
from benchmarks.real.sources import SPEECH_RATE, WORDS, digit_images, speak

FPS = 5.0
SIZE = 32
TRAIN_VOICES = ["en-us", "en-us+f2", "en-gb+m3", "en-gb+f4", "en-029", "en-029+f3"]
TEST_VOICES = ["en-gb-scotland", "en-gb-scotland+f2", "en-gb-x-rp+m3", "en-gb-x-rp+f4",
               "en-gb-x-gbcwmd", "en-gb-x-gbclan+f3"]  # fmt: skip
BABBLE_VOICES = ["en-us+m1", "en-gb+f1", "en-029+m2", "en-gb-scotland+f3", "en-gb-x-rp+m4",
                 "en-us+f4"]  # fmt: skip
BABBLE_WORDS = ["table", "window", "morning", "river", "garden", "yellow", "paper", "station", "bottle", "market", "letter", "winter", "holiday", "kitchen", "number", "silver", "forest", "engine", "castle", "pocket"]  # fmt: skip
CLASSES = [*WORDS, "none"]


@dataclass
class Event:
    start_s: float
    end_s: float
    digit: int  # -1: a pause (class none)


def caption_events(rng: np.random.Generator, onsets: list[tuple[float, int]], duration_s: float,
                   voice: str) -> tuple[list[Event], list[np.ndarray]]:  # fmt: skip
    """Spoken digits at the given onsets, each shown on the display exactly while it is spoken
    (like a caption), with pauses (class none) filling the gaps; and each digit's speech."""
    events, speech, t = [], [], 0.0
    for start, digit in onsets:
        x = speak(
            WORDS[digit], voice, int(rng.choice([150, 165, 180])), int(rng.choice([40, 50, 60]))
        )
        end = start + x.size / SPEECH_RATE
        if end > duration_s:
            break
        if start > t:
            events.append(Event(t, start, -1))
        events.append(Event(start, end, digit))
        speech.append(x)
        t = end
    if t < duration_s:
        events.append(Event(t, duration_s, -1))
    return events, speech


def pink(rng: np.random.Generator, n: int) -> np.ndarray:
    """Pink (1/f power) noise, unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size)
    spec[1:] /= np.sqrt(f[1:])
    x = np.fft.irfft(spec, n)
    return x / (np.std(x) + 1e-12)


def babble(rng: np.random.Generator, n: int, talkers: int = 4) -> np.ndarray:
    """Several talkers reading unrelated words at once, unit RMS."""
    out = np.zeros(n)
    for v in rng.choice(BABBLE_VOICES, talkers, replace=False):
        pos = int(rng.integers(0, SPEECH_RATE))
        while pos < n:
            word = speak(str(rng.choice(BABBLE_WORDS)), str(v), int(rng.choice([150, 175, 200])))
            k = min(word.size, n - pos)
            out[pos : pos + k] += word[:k]
            pos += word.size + int(rng.uniform(0.02, 0.25) * SPEECH_RATE)
    return out / (np.std(out) + 1e-12)


def frame_png(rng: np.random.Generator, img: np.ndarray | None, noise: float) -> bytes:
    """One 32x32 grey display frame: the digit (or a blank screen) with pixel noise."""
    base = np.zeros((SIZE, SIZE))
    if img is not None:
        base = (
            np.asarray(
                Image.fromarray((img * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.BILINEAR)
            )
            / 255.0
        )
    x = 0.15 + 0.7 * base + rng.normal(0, noise, base.shape) + rng.normal(0, 0.03)
    import io

    buf = io.BytesIO()
    Image.fromarray((np.clip(x, 0, 1) * 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def write_session(
    w: CaseWriter, sid: str, rng: np.random.Generator, onsets: list[tuple[float, int]], duration_s: float,
    voice: str, snr_db: float, mic_start_s: float, mic_ppm: float, images: dict[int, np.ndarray],
    pixel_noise: float = 0.25,
) -> Clock:  # fmt: skip
    """Write one session's frames, WAV and labels; returns the microphone's true clock.

    The microphone starts at `mic_start_s` on the display's clock and its samples carry no
    timestamps, so its first sample is device time 0: offset = -start (times the drift).
    """
    folder = w.folder(sid)
    events, spoken = caption_events(rng, onsets, duration_s, voice)
    # ---- display (the reference): frames at 5 fps on its own clock -------------------------
    (folder / "frames").mkdir(exist_ok=True)
    times = np.arange(int(duration_s * FPS)) / FPS
    starts = np.array([e.start_s for e in events])
    rows = []
    pool = {d: rng.permutation(len(v)) for d, v in images.items()}
    shown: dict[int, np.ndarray] = {}
    for k, t in enumerate(times):
        i = int(np.searchsorted(starts, t, side="right")) - 1
        e = events[i] if i >= 0 and t < events[i].end_s else None
        img = None
        if e is not None and e.digit >= 0:
            if id(e) not in shown:  # one handwritten sample per event, held while it is spoken
                d = e.digit
                shown[id(e)] = images[d][pool[d][len(shown) % len(pool[d])]]
            img = shown[id(e)]
        name = f"frames/{k:05d}.png"
        (folder / name).write_bytes(frame_png(rng, img, pixel_noise))
        rows.append({"t": round(float(t), 4), "file": name})
    pd.DataFrame(rows).to_csv(folder / "frames.csv", index=False)
    # ---- speech on the display's timeline, then noise at the drawn SNR ----------------------
    lead = 8.0  # the microphone may start before the display
    n = int((duration_s + 2 * lead) * SPEECH_RATE)
    speech = np.zeros(n)
    for e, x in zip((e for e in events if e.digit >= 0), spoken, strict=True):
        at = int(round((e.start_s + lead) * SPEECH_RATE))
        speech[at : at + x.size] += x[: max(n - at, 0)]
    noise = 0.6 * babble(rng, n) + 0.8 * pink(rng, n)
    active = np.abs(speech) > 0
    p_speech = float(np.mean(speech[active] ** 2)) if active.any() else 1.0
    noise *= np.sqrt(p_speech / 10 ** (snr_db / 10) / np.mean(noise**2))
    mix = speech + noise
    mix *= 0.3 / np.max(np.abs(mix))
    # ---- the microphone samples that mix on its own clock -----------------------------------
    clock = Clock(-mic_start_s * (1 + mic_ppm * 1e-6), mic_ppm)
    mic_len = duration_s - mic_start_s + rng.uniform(-1.0, 0.5)
    d = np.arange(int(mic_len * SPEECH_RATE)) / SPEECH_RATE
    t_ref = clock.to_reference(d)
    audio = np.interp((t_ref + lead) * SPEECH_RATE, np.arange(n), mix)
    (folder / "mic.wav").write_bytes(wav_bytes(audio, SPEECH_RATE))
    w.labels(
        sid, [(e.start_s, e.end_s, WORDS[e.digit] if e.digit >= 0 else "none") for e in events]
    )
    return clock


def images_by_digit(half: int) -> dict[int, np.ndarray]:
    """Half 0 or 1 of scikit-learn's digits (train/test images never meet), grouped by digit."""
    imgs, target = digit_images()
    idx = np.arange(len(target))
    keep = idx % 2 == half
    return {d: imgs[keep & (target == d)] for d in range(10)}


def spec(name: str, mic_clock: dict) -> dict:
    return {
        "name": name,
        "sessions": {"table": "sessions.csv", "id_column": "session_id", "folder": "sessions/{session_id}"},
        "reference": "display",
        "streams": {
            "display": {"kind": "image", "path": "frames.csv",
                        "params": {"time_column": "t", "file_column": "file", "width": SIZE,
                                   "height": SIZE, "channels": 1},
                        "cue": {"kind": "roi_brightness", "roi": [0.0, 1.0, 0.0, 1.0]}},
            "mic": {"kind": "audio", "path": "mic.wav", "params": {"sample_rate": SPEECH_RATE},
                    "cue": "rms_envelope", "clock": mic_clock},
        },
        "labels": {"classes": CLASSES, "source": "intervals", "path": "labels.csv"},
        "metadata": {"subject": "voice", "columns": ["archive_split"], "slices": ["archive_split"]},
    }  # fmt: skip


def speech_sessions(sessions_per_split: int):
    """(split, session id, voice, that split's digit images) of a speech case's sessions, train
    first: train sessions use the train voices and one half of the handwritten digits, test
    sessions the other voices and half. Draws nothing: each case draws its sessions' randomness
    in its own order."""
    for half, (split, voices) in enumerate((("train", TRAIN_VOICES), ("test", TEST_VOICES))):
        images = images_by_digit(half)
        for i in range(sessions_per_split):
            yield split, f"{split}-{i:02d}", voices[i % len(voices)], images
