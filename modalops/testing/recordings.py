"""Synthetic recordings for any dataset spec: known clocks and on/off sync cues in every stream.

A machine switches on and off at random times (reference clock); each stream shows it in its
own way: image and video frames a bright region (the spec's ROI), audio a hum, time series an
oscillation, text nothing. Devices run on their own clocks (offset + drift), and the clock file
holds a wrong starting guess. Used by the ingest and align tests and benchmarks:

    truths = write_recordings(store, synthetic_spec(), sessions=3, duration_s=30.0)
"""

from __future__ import annotations

import copy
import io
import json
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from modalops.dataset import layout
from modalops.dataset.layout import ClockModel, SessionStreams
from modalops.dataset.spec import SPEC_FILE, DatasetSpec, parse_spec
from modalops.ingest import session_items
from modalops.kinds.audio.read import AudioStream
from modalops.kinds.audio.wav import encode_wav
from modalops.kinds.image.read import ImageStream
from modalops.kinds.text.read import TextStream
from modalops.kinds.timeseries.read import TimeseriesStream
from modalops.kinds.timing import median_rate
from modalops.kinds.video.read import VideoStream

CLASSES = ("idle", "busy", "alarm", "service")
LIGHT_ROI = (2 / 64, 8 / 64, 56 / 64, 62 / 64)  # top, bottom, left, right fractions
FPS = 4.0


def synthetic_spec(**overrides: Any) -> dict[str, Any]:
    """A dataset spec (as a dict) with one stream of each sampled kind plus text events.

    Streams: `front` (image, the reference), `mic` (audio), `imu` (timeseries), `log` (text).
    Keyword overrides replace top-level entries (e.g. streams=..., labels=...).
    """
    spec: dict[str, Any] = {
        "name": "synthetic",
        "sessions": {
            "table": "sessions.csv",
            "id_column": "session_id",
            "folder": "sessions/{session_id}",
            "clock_file": "clock.json",
            "sync_file": "sync.json",
        },  # fmt: skip
        "reference": "front",
        "streams": {
            "front": {
                "kind": "image",
                "path": "front/index.csv",
                "params": {"time_column": "t", "file_column": "file", "width": 32, "height": 32},
                "cue": {"kind": "roi_brightness", "roi": list(LIGHT_ROI), "channel": "green"},
            },
            "mic": {
                "kind": "audio",
                "path": "mic.wav",
                "params": {"sample_rate": 8000},
                "cue": "rms_envelope",
            },
            "imu": {
                "kind": "timeseries",
                "path": "imu.parquet",
                "params": {
                    "time_column": "t",
                    "channels": ["gx", "gy", "gz"],
                    "sample_rate": 100.0,
                },
                "cue": "magnitude_envelope",
            },
            "log": {
                "kind": "text",
                "path": "log.jsonl",
                "required": False,
                "cue": "none",
                "clock": {"estimate": False},
            },
        },  # fmt: skip
        "labels": {"classes": list(CLASSES), "source": "intervals", "path": "labels.csv"},
        "metadata": {"columns": ["plant", "shift"], "subject": "operator", "slices": ["plant"]},
    }
    spec.update(copy.deepcopy(overrides))
    return spec


def machine_segments(rng: np.random.Generator, duration: float) -> np.ndarray:
    """Alternating on/off switch times (s, reference clock), segments 2-9 s long."""
    t, edges = -rng.uniform(0, 9), []
    while t < duration + 20:
        t += rng.uniform(2, 9)
        edges.append(t)
    return np.array(edges)


def machine_on(edges: np.ndarray, t_ref: np.ndarray) -> np.ndarray:
    return (np.searchsorted(edges, t_ref, side="right") % 2) == 1


def render_frame(on: bool, rng: np.random.Generator, size: int = 32, grey: bool = False,
                 roi: tuple[float, float, float, float] = LIGHT_ROI) -> np.ndarray:  # fmt: skip
    """A noisy frame whose ROI is a green light when the machine is on, dark when off."""
    img = np.full((size, size, 3), 90.0) + rng.normal(0, 8, (size, size, 3))
    r0, r1, c0, c1 = (
        int(size * roi[0]),
        int(size * roi[1]),
        int(size * roi[2]),
        int(size * roi[3]),
    )
    img[r0:r1, c0:c1] = (30, 220, 30) if on else (25, 25, 25)
    img[r0:r1, c0:c1] += rng.normal(0, 10, (r1 - r0, c1 - c0, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img[..., 1] if grey else img


def encode_image(img: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _concrete(path: str) -> str:
    """A file name a glob pattern matches (the writer's choice): '*' -> 'rec', '?' -> 'x'."""
    return path.replace("*", "rec").replace("?", "x").replace("[", "").replace("]", "")


def _roi(sspec: Any) -> tuple[float, float, float, float]:
    cue = sspec.cue_spec
    return tuple(cue.roi) if cue.kind == "roi_brightness" and cue.roi else LIGHT_ROI


def make_session(
    spec: DatasetSpec | dict[str, Any],
    sid: str = "s0",
    duration: float = 30.0,
    seed: int = 0,
    clocks: dict[str, ClockModel] | None = None,
    meta_error_s: float = 1.0,
    cue_off: frozenset[str] = frozenset(),
    label_seg: float = 3.7,
    label: str | None = None,
    audio_rate: int = 8000,
    frame_size: int = 32,
) -> tuple[SessionStreams, dict[str, bytes], dict[str, ClockModel]]:
    """(session, image frame bytes by key, true clocks) for every stream of `spec`.

    Streams in `cue_off` never show the machine (no usable sync cue). `label` makes one
    session-level label instead of intervals.
    """
    spec = spec if isinstance(spec, DatasetSpec) else parse_spec(spec)
    rng = np.random.default_rng(seed)
    ref = spec.reference
    truth: dict[str, ClockModel] = {}
    for name, s in spec.streams.items():
        if name == ref:
            continue
        if clocks and name in clocks:
            truth[name] = clocks[name]
        elif s.kind == "text":
            truth[name] = ClockModel(rng.uniform(-3, 3), 0.0)
        else:
            truth[name] = ClockModel(rng.uniform(-5, 5), rng.uniform(-100, 100))
    edges = machine_segments(rng, duration)
    frames: dict[str, bytes] = {}
    streams: dict[str, Any] = {}
    for name, s in spec.streams.items():
        clock = truth.get(name, ClockModel())
        p = spec.params(name)
        show = name not in cue_off
        if s.kind in ("image", "video"):
            fps = FPS if s.kind == "image" else float(p.fps or 8.0)
            n = int(duration * fps)
            t_dev = float(clock.to_device(0.0)) + np.arange(n) / fps
            if s.kind == "image":
                t_dev = t_dev + rng.uniform(0, 0.02, n)
            on = machine_on(edges, clock.to_reference(t_dev)) & show
            grey = s.kind == "image" and p.channels == 1
            imgs = [render_frame(bool(o), rng, frame_size, grey, _roi(s)) for o in on]
            if s.kind == "image":
                index_key = layout.session_key(spec, sid, _concrete(s.path))
                folder = index_key.rsplit("/", 1)[0]
                fmt = "PNG" if p.formats == ["PNG"] else "JPEG"
                ext = "png" if fmt == "PNG" else "jpg"
                keys = [f"{folder}/{i:06d}.{ext}" for i in range(n)]
                for k, img in zip(keys, imgs, strict=True):
                    frames[k] = encode_image(img, fmt)
                streams[name] = ImageStream(times=t_dev, files=keys, params=p)
            else:
                streams[name] = VideoStream(times=t_dev, frames=np.stack(imgs), params=p)
        elif s.kind == "audio":
            start = float(clock.to_device(0.0))
            t_dev = start + np.arange(int(duration * audio_rate)) / audio_rate
            on = machine_on(edges, clock.to_reference(t_dev)) & show
            hum = 0.2 * np.sin(2 * np.pi * 180 * t_dev) * on
            x = (hum + rng.normal(0, 0.01, t_dev.size)).astype(np.float32)
            streams[name] = AudioStream(samples=x, sample_rate=audio_rate, start_s=start, params=p)
        elif s.kind == "timeseries":
            rate = float(p.sample_rate)
            t_dev = float(clock.to_device(0.0)) + np.arange(int(duration * rate)) / rate
            on = machine_on(edges, clock.to_reference(t_dev)) & show
            k = len(p.channels)
            osc = np.sin(2 * np.pi * min(25.0, rate / 4) * t_dev)[:, None] * np.linspace(
                1.0, 0.3, k
            )  # below Nyquist
            bias = np.zeros(k)
            bias[-1] = 1.0
            v = osc * on[:, None] + rng.normal(0, 0.05, (t_dev.size, k)) + bias
            streams[name] = TimeseriesStream(times=t_dev, values=v.astype(np.float32), params=p)
        elif s.kind == "text":
            tn_ref = np.sort(rng.uniform(0, duration, max(int(duration // 10), 1)))
            streams[name] = TextStream(times=np.round(np.asarray(clock.to_device(tn_ref), float)),
                                       texts=[f"event {i}" for i in range(tn_ref.size)], params=p)  # fmt: skip
    classes = spec.labels.classes
    if label is not None or spec.labels.source == "session":
        labels = pd.DataFrame(
            {"start_s": [-np.inf], "end_s": [np.inf], "label": [label or classes[0]]}
        )
    else:
        bounds = np.arange(0.0, duration + label_seg, label_seg)
        labels = pd.DataFrame({
            "start_s": bounds[:-1], "end_s": np.minimum(bounds[1:], duration),
            "label": [classes[i % len(classes)] for i in range(bounds.size - 1)],
        })  # fmt: skip
    meta_clocks = {ref: ClockModel()}
    for name, c in truth.items():
        meta_clocks[name] = ClockModel(
            c.offset_s + rng.uniform(-meta_error_s, meta_error_s), c.drift_ppm
        )
    meta = {c: f"{c}-1" for c in spec.metadata.columns}
    if spec.metadata.subject:
        meta["subject"] = "subj-test"
    session = SessionStreams(sid, meta, meta_clocks, labels, streams=streams)
    return session, frames, truth


def _time_values(times: np.ndarray, unit: str) -> np.ndarray:
    return times / layout.TIME_SCALE[unit]


def table_bytes(df: pd.DataFrame, path: str) -> bytes:
    """A table in the format its file name says (CSV, TSV or Parquet)."""
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()
    return df.to_csv(index=False, sep="\t" if lower.endswith(".tsv") else ",").encode()


def encode_flac(samples: np.ndarray, rate: int, channels: int = 1) -> bytes:
    """FLAC bytes of float samples in [-1, 1] (mono, or the same signal on every channel)."""
    import av

    pcm = np.clip(np.rint(samples * 32767.0), -32768, 32767).astype("<i2")
    layout_name = "mono" if channels == 1 else "stereo"
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="flac") as out:
        st = out.add_stream("flac", rate=rate, layout=layout_name)
        st.format = "s16"
        hop = 4096
        for i in range(0, pcm.size, hop):
            chunk = pcm[i : i + hop]
            data = (
                np.repeat(chunk[None, :], channels, axis=0).T.reshape(1, -1)
                if channels > 1
                else chunk[None, :]
            )
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(data), format="s16", layout=layout_name
            )
            frame.rate = rate
            frame.pts = i
            frame.time_base = Fraction(1, rate)
            out.mux(st.encode(frame))
        out.mux(st.encode(None))  # flush the encoder
    return buf.getvalue()


def encode_video(
    frames: np.ndarray, times: np.ndarray, container: str = "mp4", codec: str = "mpeg4"
) -> bytes:
    """A video whose frame presentation timestamps are `times` (s, millisecond resolution)."""
    import av

    buf = io.BytesIO()
    h, w = frames.shape[1:3]
    with av.open(buf, mode="w", format=container) as out:
        rate = max(int(round(median_rate(times) or 1.0)), 1)
        st = out.add_stream(codec, rate=rate)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.codec_context.time_base = Fraction(1, 1000)
        for img, t in zip(frames, times, strict=True):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = int(round(t * 1000))
            frame.time_base = Fraction(1, 1000)
            out.mux(st.encode(frame))
        out.mux(st.encode(None))  # flush the encoder
    return buf.getvalue()


def write_session(
    store: Any,
    spec: DatasetSpec | dict[str, Any],
    session: SessionStreams,
    frames: dict[str, bytes],
    truth: dict[str, ClockModel] | None = None,
) -> None:
    """Write one synthetic session under `store` where `spec` says its files are."""
    spec = spec if isinstance(spec, DatasetSpec) else parse_spec(spec)
    sid = session.session_id
    entries = {
        n: {"offset_s": c.offset_s, "drift_ppm": c.drift_ppm} for n, c in session.clocks.items()
    }
    for name, s in spec.streams.items():
        stream = session.streams.get(name)
        if stream is None:
            continue
        p = spec.params(name)
        key = layout.session_key(spec, sid, _concrete(s.path))
        if s.kind == "image":
            rel = [f.rsplit("/", 1)[-1] for f in stream.files]
            index = pd.DataFrame(
                {p.time_column: _time_values(stream.times, p.time_unit), p.file_column: rel}
            )
            store.put_bytes(key, table_bytes(index, key))
        elif s.kind == "video":
            start = float(stream.times[0])
            entries.setdefault(name, {})[p.start_field] = start
            container = "matroska" if key.lower().endswith(".mkv") else "mp4"
            store.put_bytes(key, encode_video(stream.frames, stream.times - start, container))
        elif s.kind == "audio":
            entries.setdefault(name, {}).update(
                {p.start_field: stream.start_s, "sample_rate": stream.sample_rate}
            )
            if key.lower().endswith(".flac"):
                store.put_bytes(key, encode_flac(stream.samples, stream.sample_rate))
            else:
                store.put_bytes(key, encode_wav(stream.samples, stream.sample_rate))
        elif s.kind == "timeseries":
            cols = {p.time_column: _time_values(stream.times, p.time_unit)}
            cols.update({c: stream.values[:, i] for i, c in enumerate(p.channels)})
            store.put_bytes(key, table_bytes(pd.DataFrame(cols), key))
        elif s.kind == "text":
            lines = [json.dumps({p.time_field: float(t / layout.TIME_SCALE[p.time_unit]), p.text_field: x})
                     for t, x in zip(stream.times, stream.texts, strict=True)]  # fmt: skip
            store.put_text(key, "\n".join(lines) + "\n")
    for key, data in frames.items():
        store.put_bytes(key, data)
    if spec.sessions.clock_file:
        store.put_text(
            layout.session_key(spec, sid, spec.sessions.clock_file),
            json.dumps({"streams": entries}),
        )
    ls = spec.labels
    if ls.source == "intervals":
        df = session.labels.rename(
            columns={"start_s": ls.start_column, "end_s": ls.end_column, "label": ls.label_column}
        )
        store.put_bytes(layout.session_key(spec, sid, ls.path), table_bytes(df, ls.path))
    if truth is not None:
        doc = {n: {"offset_s": c.offset_s, "drift_ppm": c.drift_ppm} for n, c in truth.items()}
        store.put_text(f"{layout.TRUTH_DIR}/{sid}.json", json.dumps(doc))


def write_recordings(
    store: Any,
    spec_dict: dict[str, Any],
    sessions: int = 3,
    duration_s: float = 30.0,
    seed: int = 0,
    clocks: dict[str, ClockModel] | None = None,
    meta_error_s: float = 1.0,
    durations: list[float] | None = None,
) -> dict[str, dict[str, ClockModel]]:
    """Write a whole synthetic dataset: dataset.yaml, the sessions table, every session folder
    and truth/<sid>.json. Returns the true clocks per session. `durations` varies lengths."""
    spec = parse_spec(copy.deepcopy(spec_dict))
    rows, truths = [], {}
    classes = spec.labels.classes
    for i in range(sessions):
        sid = f"rec-{i:03d}"
        label = classes[i % len(classes)] if spec.labels.source == "session" else None
        dur = durations[i] if durations else duration_s
        session, frames, truth = make_session(
            spec, sid, dur, seed * 1000 + i, clocks, meta_error_s, label=label
        )
        write_session(store, spec, session, frames, truth)
        truths[sid] = truth
        row = {spec.sessions.id_column: sid}
        row.update({c: f"{c}-{i % 2}" for c in spec.metadata.columns})
        if spec.metadata.subject:
            row[spec.metadata.subject] = f"person-{i % 3}"
        if spec.labels.source == "session":
            row[spec.labels.column] = label
        rows.append(row)
    store.put_text(SPEC_FILE, yaml.safe_dump(spec_dict, sort_keys=False))
    store.put_bytes(spec.sessions.table, table_bytes(pd.DataFrame(rows), spec.sessions.table))
    return truths


def catalog_rows(
    spec: DatasetSpec, session: SessionStreams, status: dict[str, str] | None = None
) -> pd.DataFrame:
    """Catalog rows as ingest writes them (one per session item), all ok unless overridden."""
    status = status or {}
    rows = [{"session_id": session.session_id, "stream": m, "key": "", "uri": "",
             "status": status.get(m, "ok"), "reason": None, **session.meta}
            for m in session_items(spec)]  # fmt: skip
    return pd.DataFrame(rows)
