"""Synthetic sessions for the alignment tests: known clocks, on/off sync cues in every stream."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image

from modalops.raw_layout import (
    AudioStream,
    CameraStream,
    ClockModel,
    NotesStream,
    SessionStreams,
    VibrationStream,
    encode_wav,
)

FPS = 4.0
LABELS = ("normal", "proximity", "fault", "near_miss")


def machine_segments(rng: np.random.Generator, duration: float) -> np.ndarray:
    """Alternating on/off switch times (s, reference clock), segments 2-9 s long."""
    t, edges = -rng.uniform(0, 9), []
    while t < duration + 20:
        t += rng.uniform(2, 9)
        edges.append(t)
    return np.array(edges)


def machine_on(edges: np.ndarray, t_ref: np.ndarray) -> np.ndarray:
    return (np.searchsorted(edges, t_ref, side="right") % 2) == 1


def jpeg(on: bool, rng: np.random.Generator, size: int = 32) -> bytes:
    img = np.full((size, size, 3), 90.0) + rng.normal(0, 8, (size, size, 3))
    r0, r1, c0, c1 = size * 2 // 64, size * 8 // 64, size * 56 // 64, size * 62 // 64
    img[r0:r1, c0:c1] = (30, 220, 30) if on else (25, 25, 25)
    img[r0:r1, c0:c1] += rng.normal(0, 10, (r1 - r0, c1 - c0, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def make_session(
    sid: str = "s0",
    duration: float = 30.0,
    seed: int = 0,
    clocks: dict[str, ClockModel] | None = None,
    audio_rate: int = 8000,
    meta_error_s: float = 1.0,
    audio_cue: bool = True,
    label_seg: float = 3.7,
) -> tuple[SessionStreams, dict[str, bytes], dict[str, ClockModel]]:
    """(session, frame bytes by key, true clocks). Frame keys are read with `frames.__getitem__`."""
    rng = np.random.default_rng(seed)
    truth = clocks or {
        "audio": ClockModel(rng.uniform(-5, 5), rng.uniform(-100, 100)),
        "vibration": ClockModel(rng.uniform(-5, 5), rng.uniform(-100, 100)),
        "notes": ClockModel(rng.uniform(-3, 3), 0.0),
    }
    edges = machine_segments(rng, duration)
    # camera: the reference clock, ~4 fps with jitter
    n_frames = int(duration * FPS)
    t_cam = np.arange(n_frames) / FPS + rng.uniform(0, 0.02, n_frames)
    on_cam = machine_on(edges, t_cam)
    frames = {
        f"sessions/{sid}/camera/{i:06d}.jpg": jpeg(bool(on_cam[i]), rng) for i in range(n_frames)
    }
    camera = CameraStream(times=t_cam, files=list(frames))
    # audio: device clock samples, state looked up on the reference clock
    a_clock = truth["audio"]
    start_dev = float(a_clock.to_device(0.0))
    t_dev = start_dev + np.arange(int(duration * audio_rate)) / audio_rate
    t_ref = a_clock.to_reference(t_dev)
    on = machine_on(edges, t_ref) if audio_cue else np.zeros(t_ref.size, bool)
    hum = 0.2 * np.sin(2 * np.pi * 180 * t_dev) * on
    audio = (hum + rng.normal(0, 0.01, t_dev.size)).astype(np.float32)
    audio_stream = AudioStream(samples=audio, sample_rate=audio_rate, start_s=start_dev)
    # vibration: 100 Hz, 25 Hz oscillation while on
    v_clock = truth["vibration"]
    tv_dev = float(v_clock.to_device(0.0)) + np.arange(int(duration * 100)) / 100.0
    on_v = machine_on(edges, v_clock.to_reference(tv_dev))
    osc = np.sin(2 * np.pi * 25 * tv_dev)[:, None] * np.array([1.0, 0.6, 0.3])
    vib = osc * on_v[:, None] + rng.normal(0, 0.05, (tv_dev.size, 3)) + np.array([0, 0, 1.0])
    vibration = VibrationStream(times=tv_dev, values=vib.astype(np.float32))
    # notes: coarse, on the notes device clock
    tn_ref = np.sort(rng.uniform(0, duration, max(int(duration // 10), 1)))
    notes = NotesStream(
        times=np.round(truth["notes"].to_device(tn_ref)),
        texts=[f"note {i}" for i in range(tn_ref.size)],
    )
    # labels: contiguous intervals on the reference clock
    bounds = np.arange(0.0, duration + label_seg, label_seg)
    labels = pd.DataFrame({
        "start_s": bounds[:-1], "end_s": np.minimum(bounds[1:], duration),
        "label": [LABELS[i % 4] for i in range(bounds.size - 1)],
    })  # fmt: skip
    meta_clocks = {
        name: ClockModel(c.offset_s + rng.uniform(-meta_error_s, meta_error_s), c.drift_ppm)
        for name, c in truth.items()
    }
    meta_clocks["camera"] = ClockModel()
    meta = {"station_id": "st1", "site": "a", "camera_model": "cam", "microphone": "mic",
            "lighting": "day", "subject": "p1"}  # fmt: skip
    session = SessionStreams(sid, meta, meta_clocks, labels, camera, audio_stream, vibration, notes)
    return session, frames, truth


def write_raw(
    store,
    session: SessionStreams,
    frames: dict[str, bytes],
    truth: dict[str, ClockModel] | None = None,
) -> None:
    """Write a synthetic session in the raw layout (docs/data-layout.md) under `store`."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from modalops import schema
    from modalops.raw_layout import session_key

    sid = session.session_id
    streams = {
        n: {"offset_s": c.offset_s, "drift_ppm": c.drift_ppm} for n, c in session.clocks.items()
    }
    if session.audio is not None:
        streams.setdefault("audio", {}).update(
            sample_rate=session.audio.sample_rate, start_s=session.audio.start_s
        )
    store.put_text(
        session_key(sid, schema.CLOCK_FILE), json.dumps({"reference": "camera", "streams": streams})
    )
    store.put_bytes(
        session_key(sid, schema.LABELS_FILE), session.labels.to_csv(index=False).encode()
    )
    for key, data in frames.items():
        store.put_bytes(key, data)
    cam = session.camera
    index = pd.DataFrame({"frame": np.arange(cam.times.size), "t": cam.times,
                          "file": [k.rsplit("/", 1)[-1] for k in cam.files]})  # fmt: skip
    store.put_bytes(session_key(sid, schema.FRAMES_INDEX), index.to_csv(index=False).encode())
    if session.audio is not None:
        wav = encode_wav(session.audio.samples, session.audio.sample_rate)
        store.put_bytes(session_key(sid, schema.AUDIO_FILE), wav)
    if session.vibration is not None:
        v = session.vibration
        table = pa.table(
            {"t": v.times, "ax": v.values[:, 0], "ay": v.values[:, 1], "az": v.values[:, 2]}
        )
        buf = io.BytesIO()
        pq.write_table(table, buf)
        store.put_bytes(session_key(sid, schema.VIBRATION_FILE), buf.getvalue())
    if session.notes is not None:
        lines = [
            json.dumps({"t": float(t), "text": s})
            for t, s in zip(session.notes.times, session.notes.texts, strict=True)
        ]
        store.put_text(session_key(sid, schema.NOTES_FILE), "\n".join(lines) + "\n")
    if truth is not None:
        doc = {n: {"offset_s": c.offset_s, "drift_ppm": c.drift_ppm} for n, c in truth.items()}
        store.put_text(f"{schema.TRUTH_DIR}/{sid}.json", json.dumps(doc))


def catalog_rows(session: SessionStreams, status: dict[str, str] | None = None) -> pd.DataFrame:
    """Catalog rows as ingest writes them (one per session stream), all ok unless overridden."""
    status = status or {}
    rows = []
    for m in ("camera", "audio", "vibration", "notes", "labels", "clock"):
        rows.append({"session_id": session.session_id, "modality": m, "key": "", "uri": "",
                     "status": status.get(m, "ok"), "reason": None, **session.meta})  # fmt: skip
    return pd.DataFrame(rows)
