"""Deterministic generator of the industrial-safety demo recordings in the raw layout.

The scenario and signal design are documented in docs/scenario.md, the layout in
docs/data-layout.md, the corruption kinds in docs/corruptions.md. Same config -> byte-identical
files: every random draw comes from a numpy Generator seeded by (seed, session, purpose).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from PIL import Image
from pydantic import Field, field_validator

from modalops.config.base import Section
from modalops.dataset.layout import ClockModel
from modalops.kinds.audio.wav import encode_wav
from modalops.store import ObjectStore, join_key
from modalops_demo import corruption
from modalops_demo import names as schema
from modalops_demo.corruption import CORRUPTION_KINDS, CorruptionRecord, parse_corrupt_specs
from modalops_demo.names import session_key

__all__ = [
    "CORRUPTION_KINDS",
    "DemoDataConfig",
    "GenerationSummary",
    "SessionPlan",
    "generate_demo_data",
    "parse_corrupt_specs",
    "plan_session",
]

DEVICE_STREAMS = ("audio", "vibration", "notes")
SITES = ("site_a", "site_b", "site_c")
STATIONS_PER_SITE = {"site_a": 4, "site_b": 4, "site_c": 2}
N_OPERATORS = 24
CORRUPTIONS_FILE = "corruptions.json"  # under truth/

NEUTRAL_NOTES = (
    "shift check ok",
    "guard inspected",
    "lubrication done",
    "batch started",
    "coffee break",
    "tooling swapped",
    "all clear",
    "material restocked",
)
FAULT_NOTES = ("bearing noise", "machine rattling", "check spindle", "odd vibration on press")
PERSON_NOTES = ("operator at press", "someone near the guard", "adjusting the workpiece")


class DemoDataConfig(Section):
    """What the demo generator writes: size, rates, clock errors and injected corruptions."""

    sessions: int = Field(default=40, ge=1, description="Number of recording sessions.")
    duration_s: float = Field(
        default=60.0, ge=5.0, description="Length of each session on the reference clock (s)."
    )
    fps: float = Field(default=4.0, gt=0, le=30, description="Camera frame rate (frames/s).")
    image_size: int = Field(
        default=64, ge=32, le=512, description="Camera frame side length in pixels (square)."
    )
    audio_rate: int = Field(default=16000, ge=8000, description="Microphone sample rate (Hz).")
    vibration_rate: float = Field(
        default=100.0, ge=50.0, description="Nominal vibration telemetry rate (Hz)."
    )
    seed: int = Field(default=0, description="Seed of every random draw; same seed, same bytes.")
    # 8 s: unsynchronised recorders are off by seconds; at ±4 s the misaligned (`align.mode:
    # none`) fused model kept most of its lift (measured: +32 vs +37 F1 points), at ±8 s it
    # loses it (+5 vs +39), which is the failure the aligner exists to prevent.
    max_offset_s: float = Field(
        default=8.0, ge=0, description="Largest |true clock offset| of audio and vibration (s)."
    )
    max_drift_ppm: float = Field(
        default=80.0, ge=0, description="Largest |true clock drift| of every device stream (ppm)."
    )
    corrupt: dict[str, float] = Field(
        default_factory=dict,
        description="Corruptions to inject, KIND -> RATE (fraction of sessions, or of frames / "
        "label intervals for jpeg, label_shift, label_swap); see docs/corruptions.md.",
    )

    @field_validator("corrupt")
    @classmethod
    def _known_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        for kind, rate in value.items():
            corruption.check_rate(kind, rate)
        return value


@dataclass
class GenerationSummary:
    """What generate_demo_data wrote: sessions, seconds per (true) label, injected corruptions."""

    root: str
    n_sessions: int
    session_ids: list[str]
    label_seconds: dict[str, float]
    corrupted: list[CorruptionRecord] = field(default_factory=list)

    def __str__(self) -> str:
        fractions = ", ".join(f"{k} {v:.0%}" for k, v in self.label_fractions.items())
        kinds: dict[str, int] = {}
        for r in self.corrupted:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        injected = ", ".join(f"{k}: {n}" for k, n in kinds.items()) or "none"
        return (
            f"{self.n_sessions} sessions at {self.root}\n"
            f"label share of time: {fractions}\n"
            f"corruptions injected: {injected}"
        )

    @property
    def label_counts(self) -> dict[str, float]:
        """Alias of label_seconds: labels are intervals, so they are counted in seconds."""
        return self.label_seconds

    @property
    def label_fractions(self) -> dict[str, float]:
        total = sum(self.label_seconds.values()) or 1.0
        return {k: v / total for k, v in self.label_seconds.items()}


@dataclass
class Intervals:
    """Sorted, non-overlapping [start, end) intervals on the reference clock."""

    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def from_pairs(cls, pairs: list[tuple[float, float]]) -> Intervals:
        arr = np.asarray(sorted(pairs), dtype=np.float64).reshape(-1, 2)
        return cls(arr[:, 0].copy(), arr[:, 1].copy())

    def index(self, t: np.ndarray) -> np.ndarray:
        """Index of the interval holding each time, -1 outside every interval."""
        t = np.asarray(t, dtype=np.float64)
        idx = np.searchsorted(self.starts, t, side="right") - 1
        inside = idx >= 0
        inside[inside] = t[inside] < self.ends[idx[inside]]
        return np.where(inside, idx, -1)

    def contains(self, t: np.ndarray) -> np.ndarray:
        return self.index(t) >= 0

    def seconds_within(self, lo: float, hi: float) -> float:
        return float(
            np.clip(np.minimum(self.ends, hi) - np.maximum(self.starts, lo), 0, None).sum()
        )


@dataclass
class SessionPlan:
    """Hidden state and metadata of one session (no I/O): everything the renderers draw from."""

    index: int
    session_id: str
    meta: dict[str, object]
    duration_s: float
    machine_on: Intervals
    fault: Intervals
    person: Intervals
    distractor: Intervals  # a person visible outside the danger zone
    footsteps: Intervals  # audible steps, unrelated to the zone
    labels: pd.DataFrame  # start_s, end_s, label (clean, reference clock)
    truth: dict[str, ClockModel]  # true device clocks
    metadata_clock: dict[str, ClockModel]  # what clock.json claims (true + error, no drift)
    station: dict[str, float]  # station-specific signal parameters
    lead_s: dict[str, float]  # seconds (reference clock) each stream starts before 0
    tail_s: dict[str, float]  # and ends after duration_s


# ---- hidden state --------------------------------------------------------------------------------


def _rng(cfg: DemoDataConfig, *path: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, *path])


def _machine_segments(rng: np.random.Generator, horizon: float, duration: float) -> Intervals:
    """Alternating off/on segments: off first for 1-3 s, then 2-9 s segments (on runs a bit
    longer), redrawn until every 30 s holds at least 4 transitions (cues for the aligner)."""
    need = 4 if duration >= 30 else max(1, int(4 * duration / 30))
    span = min(30.0, duration)
    best: list[tuple[float, float]] = []
    for _ in range(200):
        t = round(float(rng.uniform(1.0, 3.0)), 2)
        on, transitions = [], [t]
        while t < horizon:
            length = rng.uniform(3.0, 9.0)
            end = round(t + length, 2)
            on.append((t, end))
            t = round(end + rng.uniform(2.0, 6.0), 2)
            transitions += [end, t]
        best = on
        tr = np.asarray(transitions)
        starts = np.arange(0.0, max(duration - span, 0.0) + 1e-9, 1.0)
        counts = np.searchsorted(tr, starts + span) - np.searchsorted(tr, starts)
        if counts.min() >= need:
            break
    return Intervals.from_pairs(best)


def _faults(rng: np.random.Generator, machine: Intervals) -> Intervals:
    """Fault events of 3-8 s, each inside one machine-on segment (a stopped machine has none)."""
    pairs = []
    for start, end in zip(machine.starts, machine.ends, strict=True):
        if rng.random() >= 0.6:
            continue
        length = min(rng.uniform(3.0, 8.0), end - start)
        s = start + rng.uniform(0.0, end - start - length)
        pairs.append((round(s, 2), round(min(s + length, end), 2)))
    return Intervals.from_pairs([p for p in pairs if p[1] > p[0]])


def _events(
    rng: np.random.Generator, horizon: float, first: float, length: tuple[float, float], gap: float
) -> Intervals:
    """A renewal process of events: lengths uniform in `length`, gaps 2 s + exponential(`gap`)."""
    pairs = []
    t = rng.uniform(0.0, first)
    while t < horizon:
        end = t + rng.uniform(*length)
        pairs.append((round(t, 2), round(end, 2)))
        t = end + 2.0 + rng.exponential(gap)
    return Intervals.from_pairs(pairs)


def _label_of(person: np.ndarray, fault: np.ndarray) -> np.ndarray:
    return np.where(
        person & fault,
        "near_miss",
        np.where(person, "proximity", np.where(fault, "fault", "normal")),
    )


def _labels(duration: float, person: Intervals, fault: Intervals) -> pd.DataFrame:
    """Contiguous label intervals over [0, duration] from the hidden state."""
    edges = np.concatenate([[0.0, duration], person.starts, person.ends, fault.starts, fault.ends])
    edges = np.unique(np.round(edges[(edges >= 0) & (edges <= duration)], 2))
    mids = (edges[:-1] + edges[1:]) / 2
    labels = _label_of(person.contains(mids), fault.contains(mids))
    keep = np.concatenate([[True], labels[1:] != labels[:-1]])  # merge equal neighbours
    starts = edges[:-1][keep]
    ends = np.append(starts[1:], duration)
    return pd.DataFrame({"start_s": starts, "end_s": ends, "label": labels[keep]})


def plan_session(cfg: DemoDataConfig, index: int) -> SessionPlan:
    """Metadata, hidden state, labels and clocks of session `index` (pure; no rendering)."""
    rng = _rng(cfg, index, 0)
    duration = float(cfg.duration_s)
    u = rng.random()
    site = "site_c" if u < 0.10 else ("site_a" if u < 0.55 else "site_b")
    station_no = int(rng.integers(1, STATIONS_PER_SITE[site] + 1))
    station_id = f"station_{site[-1]}{station_no}"
    meta = {
        "session_id": f"sess-{index:04d}",
        "station_id": station_id,
        "site": site,
        "camera_model": "cam_x" if rng.random() < 0.5 else "cam_y",
        "microphone": "mic_mems" if rng.random() < 0.5 else "mic_condenser",
        "lighting": "night" if rng.random() < 0.35 else "day",
        "subject_id": f"op-{int(rng.integers(1, N_OPERATORS + 1)):03d}",
        "duration_s": duration,
    }
    # Device streams run past the session end, so the hidden state must too.
    horizon = duration + cfg.max_offset_s + 6.0
    machine = _machine_segments(rng, horizon, duration)
    fault = _faults(rng, machine)
    person = _events(rng, horizon, first=8.0, length=(3.0, 8.0), gap=10.0)
    distractor = _events(rng, horizon, first=20.0, length=(2.0, 8.0), gap=20.0)
    footsteps = _events(rng, horizon, first=20.0, length=(1.5, 5.0), gap=20.0)

    truth: dict[str, ClockModel] = {}
    metadata_clock: dict[str, ClockModel] = {}
    for name in DEVICE_STREAMS:
        max_off = 2.0 if name == "notes" else cfg.max_offset_s
        true = ClockModel(
            round(float(rng.uniform(-max_off, max_off)), 4),
            round(float(rng.uniform(-cfg.max_drift_ppm, cfg.max_drift_ppm)), 3),
        )
        truth[name] = true
        # What the device believed: right to within 1.5 s, and no notion of drift.
        metadata_clock[name] = ClockModel(round(true.offset_s + float(rng.uniform(-1.5, 1.5)), 3))
    sid_rng = _rng(cfg, 1_000_000, _station_seed(station_id))
    station = {
        "hum_hz": float(sid_rng.uniform(100.0, 130.0)),
        "vib_hz": float(sid_rng.uniform(23.0, 27.0)),
    }
    lead = {name: float(rng.uniform(0.5, 1.5)) for name in ("audio", "vibration")}
    tail = {name: float(rng.uniform(0.5, 1.5)) for name in ("audio", "vibration")}
    return SessionPlan(
        index=index,
        session_id=str(meta["session_id"]),
        meta=meta,
        duration_s=duration,
        machine_on=machine,
        fault=fault,
        person=person,
        distractor=distractor,
        footsteps=footsteps,
        labels=_labels(duration, person, fault),
        truth=truth,
        metadata_clock=metadata_clock,
        station=station,
        lead_s=lead,
        tail_s=tail,
    )


def _station_seed(station_id: str) -> int:
    # Stable across processes (unlike hash()), so a station sounds the same in every run.
    return int.from_bytes(station_id.encode()[-4:].rjust(4, b"\0"), "big")


# ---- camera ------------------------------------------------------------------------------------


def _box(s: int, r0: float, r1: float, c0: float, c1: float) -> tuple[slice, slice]:
    return slice(round(r0 * s), round(r1 * s)), slice(round(c0 * s), round(c1 * s))


def status_light_box(image_size: int) -> tuple[slice, slice]:
    """Rows/cols of the machine's status light (the camera's sync cue) in a square frame."""
    s = image_size
    return slice(s * 2 // 64, s * 8 // 64), slice(s * 56 // 64, s * 62 // 64)


DANGER_ZONE = (0.50, 0.95, 0.42, 0.70)  # rows, cols as fractions of the frame
DISTRACTOR_ZONE = (0.50, 0.95, 0.02, 0.30)
LIGHT_ON = np.array([30.0, 220.0, 30.0], dtype=np.float32)
LIGHT_OFF = np.array([25.0, 25.0, 25.0], dtype=np.float32)
COLOUR_GAIN = {"cam_x": (0.95, 1.0, 1.05), "cam_y": (1.07, 1.0, 0.90)}


def _scene(s: int) -> np.ndarray:
    img = np.empty((s, s, 3), dtype=np.float32)
    img[:] = (150.0, 155.0, 165.0)  # wall
    img[round(0.35 * s) :] = (118.0, 116.0, 110.0)  # floor
    rows = np.linspace(0.9, 1.1, s, dtype=np.float32)[:, None, None]
    img *= rows  # light falls off towards the top
    img[_box(s, *DANGER_ZONE)] = (150.0, 140.0, 80.0)  # yellow floor marking of the zone
    img[_box(s, 0.20, 0.92, 0.72, 0.96)] = (70.0, 75.0, 85.0)  # the machine
    img[_box(s, 0.30, 0.45, 0.76, 0.92)] = (95.0, 100.0, 110.0)  # its control panel
    return img


def _person_track(
    rng: np.random.Generator, events: Intervals, zone: tuple[float, float, float, float], s: int
) -> list[tuple[int, int, np.ndarray]]:
    """Per event: top-left row/col of a ~10x18 px person inside `zone`, and a clothing colour."""
    w, h = max(3, round(10 * s / 64)), max(5, round(18 * s / 64))
    r0, r1, c0, c1 = (round(z * s) for z in zone)
    out = []
    for _ in range(len(events.starts)):
        row = int(rng.integers(max(0, r0 - h // 2), max(r0 - h // 2 + 1, r1 - h)))
        col = int(rng.integers(c0, max(c0 + 1, c1 - w)))
        colour = rng.uniform(40.0, 230.0, size=3).astype(np.float32)
        out.append((row, col, colour))
    return out


def render_frames(plan: SessionPlan, cfg: DemoDataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Frame times (camera clock = reference) and uint8 frames (n, s, s, 3)."""
    rng = _rng(cfg, plan.index, 1)
    s = cfg.image_size
    n = int(np.floor(plan.duration_s * cfg.fps))
    # Small capture jitter (< 1/4 period), so frame times are realistic yet strictly increasing.
    times = np.round(np.arange(n) / cfg.fps + rng.uniform(0, 0.2 / cfg.fps, n), 4)
    frames = np.broadcast_to(_scene(s), (n, s, s, 3)).copy()
    night = plan.meta["lighting"] == "night"
    if night:
        frames *= 0.4
    w, h = max(3, round(10 * s / 64)), max(5, round(18 * s / 64))
    head = max(1, round(4 * s / 64))
    for events, zone in ((plan.person, DANGER_ZONE), (plan.distractor, DISTRACTOR_ZONE)):
        track = _person_track(rng, events, zone, s)
        which = events.index(times)
        wobble = rng.integers(-1, 2, size=(n, 2))  # people shift on their feet between frames
        for k in np.flatnonzero(which >= 0):
            row, col, colour = track[which[k]]
            row = int(np.clip(row + wobble[k, 0], 0, s - h))
            col = int(np.clip(col + wobble[k, 1], 0, s - w))
            shade = 0.5 if night else 1.0
            frames[k, row + head : row + h, col : col + w] = colour * shade
            frames[k, row : row + head, col + w // 4 : col + w - w // 4] = (
                np.array([200.0, 160.0, 130.0], dtype=np.float32) * shade
            )
    rows, cols = status_light_box(s)
    on = plan.machine_on.contains(times)
    frames[:, rows, cols] = np.where(on[:, None, None, None], LIGHT_ON, LIGHT_OFF)
    frames *= np.asarray(COLOUR_GAIN[str(plan.meta["camera_model"])], dtype=np.float32)
    sigma = 18.0 if night else 5.0
    frames += rng.normal(0.0, sigma, size=frames.shape).astype(np.float32)
    return times, np.clip(frames, 0, 255).astype(np.uint8)


def encode_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# ---- audio ---------------------------------------------------------------------------------------


def _device_span(plan: SessionPlan, name: str) -> tuple[float, float]:
    """Start and end of a stream on its own (true) device clock."""
    clock = plan.truth[name]
    return (
        float(clock.to_device(-plan.lead_s[name])),
        float(clock.to_device(plan.duration_s + plan.tail_s[name])),
    )


def _add_bursts(
    signal: np.ndarray, at: np.ndarray, kernel: np.ndarray, gains: np.ndarray | float = 1.0
) -> None:
    gains = np.broadcast_to(np.asarray(gains, dtype=np.float32), at.shape)
    for i, g in zip(at, gains, strict=True):
        if 0 <= i < signal.size:
            seg = signal[i : i + kernel.size]
            seg += g * kernel[: seg.size]


def render_audio(plan: SessionPlan, cfg: DemoDataConfig) -> tuple[np.ndarray, float]:
    """Float32 mono samples at cfg.audio_rate and the device time of the first sample."""
    rng = _rng(cfg, plan.index, 2)
    rate = cfg.audio_rate
    clock = plan.truth["audio"]
    start, end = _device_span(plan, "audio")
    start = round(start, 4)
    n = int((end - start) * rate)
    t_dev = start + np.arange(n, dtype=np.float64) / rate
    t_ref = clock.to_reference(t_dev)
    floor = 0.02 if plan.meta["microphone"] == "mic_mems" else 0.006
    x = rng.normal(0.0, floor, n).astype(np.float32)
    # Machine hum: station-specific fundamental plus two harmonics, only while running.
    on = plan.machine_on.contains(t_ref).astype(np.float32)
    f0 = plan.station["hum_hz"]
    phase = 2 * np.pi * t_dev
    hum = (
        0.12 * np.sin(phase * f0)
        + 0.07 * np.sin(phase * 2 * f0 + 1.0)
        + 0.04 * np.sin(phase * 3 * f0 + 2.0)
    )
    x += (hum * on).astype(np.float32)
    # Fault signature: a bearing whine (1.5-3 kHz) and/or periodic knocks, per fault event.
    fault_idx = plan.fault.index(t_ref)
    knock = (
        np.exp(-np.arange(int(0.03 * rate)) / (0.006 * rate)) * rng.normal(0, 1, int(0.03 * rate))
    ).astype(np.float32)
    for e in range(len(plan.fault.starts)):
        mask = fault_idx == e
        if not mask.any():
            continue
        style = rng.integers(0, 3)  # 0 whine, 1 knocks, 2 both
        if style in (0, 2):
            whine_hz = rng.uniform(1500.0, 3000.0)
            amp = rng.uniform(0.04, 0.08)
            x[mask] += (amp * np.sin(phase[mask] * whine_hz)).astype(np.float32)
        if style in (1, 2):
            period = rng.uniform(0.25, 0.6)
            beats = np.arange(plan.fault.starts[e], plan.fault.ends[e], period)
            at = np.searchsorted(t_ref, beats)
            _add_bursts(x, at, knock, rng.uniform(0.2, 0.35, size=beats.size))
    # Footsteps: thuds at walking pace, anywhere in the hall (not tied to the danger zone).
    thud_len = int(0.05 * rate)
    thud = (
        np.exp(-np.arange(thud_len) / (0.01 * rate))
        * np.sin(2 * np.pi * 70 * np.arange(thud_len) / rate)
    ).astype(np.float32)
    for s0, e0 in zip(plan.footsteps.starts, plan.footsteps.ends, strict=True):
        beats = np.arange(s0, e0, rng.uniform(0.45, 0.6))
        _add_bursts(
            x, np.searchsorted(t_ref, beats), thud, rng.uniform(0.05, 0.12, size=beats.size)
        )
    return np.clip(x, -1.0, 1.0), start


# ---- vibration -----------------------------------------------------------------------------------


def render_vibration(plan: SessionPlan, cfg: DemoDataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Device-clock timestamps (float64) and (n, 3) float32 acceleration in g."""
    rng = _rng(cfg, plan.index, 3)
    rate = cfg.vibration_rate
    clock = plan.truth["vibration"]
    start, end = _device_span(plan, "vibration")
    n = int((end - start) * rate)
    # Sampling jitter of at most 2 ms on a 10 ms period keeps timestamps strictly increasing.
    t_dev = start + np.arange(n) / rate + np.clip(rng.normal(0, 0.0005, n), -0.002, 0.002)
    t_dev = np.round(t_dev, 5)
    t_ref = clock.to_reference(t_dev)
    on = plan.machine_on.contains(t_ref)[:, None]
    f = plan.station["vib_hz"]
    phases = rng.uniform(0, 2 * np.pi, 3)
    amps = rng.uniform(0.8, 1.1, 3)
    running = amps * np.sin(2 * np.pi * f * t_dev[:, None] + phases)
    values = rng.normal(0.0, 0.05, (n, 3))
    fault_idx = plan.fault.index(t_ref)
    for e in range(len(plan.fault.starts)):
        mask = fault_idx == e
        if not mask.any():
            continue
        axis = int(rng.integers(0, 3))
        wob_hz, mod_hz = rng.uniform(5.0, 9.0), rng.uniform(0.5, 2.0)
        tt = t_dev[mask]
        # Unbalance: a strong low-frequency wobble and an amplitude-modulated running tone.
        running[mask, axis] *= 1.0 + 0.7 * np.sin(2 * np.pi * mod_hz * tt)
        values[mask, axis] += rng.uniform(0.6, 1.0) * np.sin(
            2 * np.pi * wob_hz * tt + rng.uniform(0, 6.3)
        )
    values += running * on
    return t_dev, values.astype(np.float32)


def encode_parquet(times: np.ndarray, values: np.ndarray) -> bytes:
    table = pa.table(
        {
            "t": pa.array(times, pa.float64()),
            "ax": pa.array(values[:, 0], pa.float32()),
            "ay": pa.array(values[:, 1], pa.float32()),
            "az": pa.array(values[:, 2], pa.float32()),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


# ---- notes ---------------------------------------------------------------------------------------


def render_notes(plan: SessionPlan, cfg: DemoDataConfig) -> list[dict[str, object]]:
    """Sparse operator notes: one per 10-25 s, timestamps rounded to 5 s on the notes clock."""
    rng = _rng(cfg, plan.index, 4)
    notes = []
    t = rng.uniform(2.0, 10.0)
    while t < plan.duration_s:
        near = np.array([t - 4.0, t, t + 4.0])
        u = rng.random()
        if plan.fault.contains(near).any() and u < 0.45:
            pool = FAULT_NOTES
        elif plan.person.contains(near).any() and u < 0.40:
            pool = PERSON_NOTES
        elif u < 0.06:
            pool = FAULT_NOTES  # people also write about noises that turn out to be nothing
        elif u < 0.12:
            pool = PERSON_NOTES
        else:
            pool = NEUTRAL_NOTES
        text = pool[int(rng.integers(0, len(pool)))]
        t_dev = round(float(plan.truth["notes"].to_device(t)) / 5.0) * 5.0
        notes.append({"t": float(t_dev), "text": text})
        t += rng.uniform(10.0, 25.0)
    return notes


# ---- corruption plan -----------------------------------------------------------------------------


@dataclass
class _SessionDamage:
    session_kinds: dict[str, np.random.Generator] = field(default_factory=dict)
    jpeg_frames: list[int] = field(default_factory=list)
    shifted: list[int] = field(default_factory=list)
    swapped: list[int] = field(default_factory=list)


def _plan_damage(cfg: DemoDataConfig, plans: list[SessionPlan]) -> list[_SessionDamage]:
    """Which session / frame / interval each requested corruption hits, from the seed alone."""
    damage = [_SessionDamage() for _ in plans]
    used: set[int] = set()
    n_frames = int(np.floor(cfg.duration_s * cfg.fps))
    for k, kind in enumerate(CORRUPTION_KINDS):
        rate = cfg.corrupt.get(kind, 0.0)
        if rate <= 0:
            continue
        rng = _rng(cfg, 2_000_000 + k)
        if kind in corruption.SESSION_KINDS:
            hits = corruption.n_hits(rate, len(plans))
            # Prefer sessions no other kind hit, so each detection is attributable.
            fresh = [i for i in range(len(plans)) if i not in used]
            order = list(rng.permutation(fresh)) + list(rng.permutation(sorted(used)))
            for i in order[:hits]:
                damage[int(i)].session_kinds[kind] = _rng(cfg, plans[int(i)].index, 3_000_000 + k)
                used.add(int(i))
            continue
        if kind == "jpeg":
            total = n_frames * len(plans)
            for item in rng.choice(total, size=corruption.n_hits(rate, total), replace=False):
                damage[int(item) // n_frames].jpeg_frames.append(int(item) % n_frames)
        else:
            sizes = [len(p.labels) for p in plans]
            offsets = np.cumsum([0, *sizes])
            total = int(offsets[-1])
            for item in rng.choice(total, size=corruption.n_hits(rate, total), replace=False):
                i = int(np.searchsorted(offsets, item, side="right") - 1)
                target = damage[i].shifted if kind == "label_shift" else damage[i].swapped
                target.append(int(item - offsets[i]))
    for d in damage:
        d.jpeg_frames.sort()
        d.shifted.sort()
        d.swapped.sort()
    return damage


# ---- writing -------------------------------------------------------------------------------------


def _labels_csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, float_format="%.2f").encode("utf-8")


def _write_session(
    store: ObjectStore, cfg: DemoDataConfig, plan: SessionPlan, damage: _SessionDamage
) -> list[CorruptionRecord]:
    sid = plan.session_id
    records: list[CorruptionRecord] = []
    kinds = damage.session_kinds

    def note(kind: str, key: str, detail: str) -> None:
        records.append(CorruptionRecord(kind, sid, key, detail))

    missing = None
    if "missing_modality" in kinds:
        missing = str(kinds["missing_modality"].choice(["camera", "audio", "vibration", "notes"]))
    disordered = None
    if "shuffled_timestamps" in kinds:
        disordered = str(kinds["shuffled_timestamps"].choice(["camera", "vibration"]))

    # camera
    times, frames = render_frames(plan, cfg)
    names = [f"f{k:06d}.jpg" for k in range(len(times))]
    frame_times = times
    if disordered == "camera":
        frame_times, detail = corruption.disorder(times, kinds["shuffled_timestamps"])
        note("shuffled_timestamps", session_key(sid, schema.FRAMES_INDEX), detail)
    index_key = session_key(sid, schema.FRAMES_INDEX)
    if missing == "camera":
        note("missing_modality", index_key, "camera frames index not written")
    else:
        index = pd.DataFrame({"frame": np.arange(len(times)), "t": frame_times, "file": names})
        store.put_bytes(index_key, index.to_csv(index=False, float_format="%.4f").encode())
        jpeg_rng = _rng(cfg, plan.index, 5)
        bad = set(damage.jpeg_frames)
        for k, (name, frame) in enumerate(zip(names, frames, strict=True)):
            data = encode_jpeg(frame)
            key = session_key(sid, f"camera/{name}")
            if k in bad:
                data, detail = corruption.corrupt_jpeg(data, jpeg_rng)
                note("jpeg", key, detail)
            store.put_bytes(key, data)

    # audio
    samples, audio_start = render_audio(plan, cfg)
    audio_key = session_key(sid, schema.AUDIO_FILE)
    written_rate = cfg.audio_rate
    if "sample_rate" in kinds:
        samples = corruption.resample_audio(samples, 2)
        written_rate = cfg.audio_rate // 2
        note(
            "sample_rate",
            audio_key,
            f"written at {written_rate} Hz, clock.json says {cfg.audio_rate} Hz",
        )
    wav = encode_wav(samples, written_rate)
    if "truncated_wav" in kinds:
        wav, detail = corruption.truncate_wav(wav, kinds["truncated_wav"])
        note("truncated_wav", audio_key, detail)
    if missing == "audio":
        note("missing_modality", audio_key, "audio file not written")
    else:
        store.put_bytes(audio_key, wav)

    # vibration
    vib_t, vib = render_vibration(plan, cfg)
    vib_key = session_key(sid, schema.VIBRATION_FILE)
    if "nan_burst" in kinds:
        vib, detail = corruption.nan_bursts(vib, cfg.vibration_rate, kinds["nan_burst"])
        note("nan_burst", vib_key, detail)
    if "flatline" in kinds:
        vib, detail = corruption.flatline(vib, kinds["flatline"])
        note("flatline", vib_key, detail)
    if disordered == "vibration":
        vib_t, detail = corruption.disorder(vib_t, kinds["shuffled_timestamps"])
        note("shuffled_timestamps", vib_key, detail)
    if missing == "vibration":
        note("missing_modality", vib_key, "vibration file not written")
    else:
        store.put_bytes(vib_key, encode_parquet(vib_t, vib))

    # notes
    notes_key = session_key(sid, schema.NOTES_FILE)
    if missing == "notes":
        note("missing_modality", notes_key, "notes file not written")
    else:
        lines = "".join(json.dumps(n) + "\n" for n in render_notes(plan, cfg))
        store.put_bytes(notes_key, lines.encode("utf-8"))

    # clock metadata (what the devices believed) and true clocks (evaluation only)
    streams: dict[str, dict[str, object]] = {"camera": {"offset_s": 0.0, "drift_ppm": 0.0}}
    for name in DEVICE_STREAMS:
        streams[name] = {
            "offset_s": plan.metadata_clock[name].offset_s,
            "drift_ppm": plan.metadata_clock[name].drift_ppm,
        }
    streams["camera"]["fps"] = cfg.fps
    streams["audio"].update(start_s=audio_start, sample_rate=cfg.audio_rate)
    streams["vibration"]["sample_rate"] = cfg.vibration_rate
    clock_doc = {"reference": "camera", "streams": streams}
    store.put_text(session_key(sid, schema.CLOCK_FILE), json.dumps(clock_doc, indent=1))
    truth = {n: {"offset_s": c.offset_s, "drift_ppm": c.drift_ppm} for n, c in plan.truth.items()}
    store.put_text(join_key(schema.TRUTH_DIR, f"{sid}.json"), json.dumps(truth, indent=1))

    # labels (clean copy kept under truth/ so label-noise experiments can score against it)
    labels = plan.labels.copy()
    store.put_bytes(join_key(schema.TRUTH_DIR, "labels", f"{sid}.csv"), _labels_csv(labels))
    labels_key = session_key(sid, schema.LABELS_FILE)
    label_rng = _rng(cfg, plan.index, 6)
    if damage.shifted:
        bounds = np.append(labels["start_s"].to_numpy(), plan.duration_s)
        for j in damage.shifted:
            bounds, delta = corruption.shift_boundaries(bounds, j, label_rng)
            note(
                "label_shift",
                labels_key,
                f"interval {j} ({labels.at[j, 'label']}) shifted {delta:+.2f} s",
            )
        labels["start_s"], labels["end_s"] = bounds[:-1], bounds[1:]
    for j in damage.swapped:
        old = str(labels.at[j, "label"])
        labels.at[j, "label"] = corruption.swap_label(old, label_rng)
        note("label_swap", labels_key, f"interval {j} {old} -> {labels.at[j, 'label']}")
    if "unknown_label" in kinds:
        j = int(kinds["unknown_label"].integers(0, len(labels)))
        bad_label = corruption.UNKNOWN_LABELS[int(kinds["unknown_label"].integers(0, 4))]
        note("unknown_label", labels_key, f"interval {j} {labels.at[j, 'label']} -> {bad_label}")
        labels.at[j, "label"] = bad_label
    store.put_bytes(labels_key, _labels_csv(labels))
    return records


def demo_spec_yaml(cfg: DemoDataConfig) -> str:
    """The shipped dataset.yaml with the sizes and rates this configuration writes."""
    spec = yaml.safe_load(schema.spec_text())
    cam, audio, vib = (spec["streams"][n] for n in ("camera", "audio", "vibration"))
    cam["checks"]["frame_size"] = [cfg.image_size, cfg.image_size]
    audio["params"]["sample_rate"] = int(cfg.audio_rate)
    vib["params"]["sample_rate"] = float(cfg.vibration_rate)
    header = "# Written by the demo generator from modalops_demo/dataset.yaml.\n"
    return header + yaml.safe_dump(spec, sort_keys=False)


def generate_demo_data(store: ObjectStore, cfg: DemoDataConfig) -> GenerationSummary:
    """Write the whole demo dataset (raw layout + truth/) under the store root."""
    plans = [plan_session(cfg, i) for i in range(cfg.sessions)]
    damage = _plan_damage(cfg, plans)
    records: list[CorruptionRecord] = []
    seconds = dict.fromkeys(schema.LABELS, 0.0)
    for plan, dmg in zip(plans, damage, strict=True):
        records += _write_session(store, cfg, plan, dmg)
        lengths = plan.labels["end_s"] - plan.labels["start_s"]
        for label, secs in lengths.groupby(plan.labels["label"]).sum().items():
            seconds[str(label)] += float(secs)
    manifest = pd.DataFrame([p.meta for p in plans], columns=list(schema.MANIFEST_COLUMNS))
    store.put_text(schema.SPEC_FILE, demo_spec_yaml(cfg))  # the demo, declared like any dataset
    # Written last: a reader that finds the manifest finds every session it lists.
    store.put_bytes(schema.SESSIONS_MANIFEST, manifest.to_csv(index=False).encode("utf-8"))
    store.put_text(
        join_key(schema.TRUTH_DIR, CORRUPTIONS_FILE),
        json.dumps([r.to_dict() for r in records], indent=1),
    )
    return GenerationSummary(
        root=store.uri(),
        n_sessions=len(plans),
        session_ids=[p.session_id for p in plans],
        label_seconds={k: round(v, 2) for k, v in seconds.items()},
        corrupted=records,
    )


INCOMING_TRUTH = "incoming_labels"  # under truth/: what a careful reviewer would answer


def add_incoming_sessions(store: ObjectStore, cfg: DemoDataConfig, n: int) -> list[str]:
    """`n` new sessions arrive after training: recorded like the others and listed in the
    sessions table, but not labelled yet. Their true labels go under truth/, where only the
    demo's scripted reviewer looks. Returns their ids."""
    table = pd.read_csv(io.BytesIO(store.get_bytes(schema.SESSIONS_MANIFEST)), dtype=str)
    known = [int(s.rsplit("-", 1)[-1]) for s in table["session_id"]]
    first = max(known, default=-1) + 1
    plans = [plan_session(cfg, i) for i in range(first, first + n)]
    clean = cfg.model_copy(update={"corrupt": {}})
    for plan, dmg in zip(plans, _plan_damage(clean, plans), strict=True):
        _write_session(store, clean, plan, dmg)
        key = session_key(plan.session_id, schema.LABELS_FILE)
        store.put_bytes(
            join_key(schema.TRUTH_DIR, INCOMING_TRUTH, f"{plan.session_id}.csv"),
            store.get_bytes(key),
        )
        store.delete(key)
    new = pd.DataFrame([p.meta for p in plans], columns=list(schema.MANIFEST_COLUMNS)).astype(str)
    both = pd.concat([table, new], ignore_index=True)
    store.put_bytes(schema.SESSIONS_MANIFEST, both.to_csv(index=False).encode("utf-8"))
    return [p.session_id for p in plans]


def incoming_truth(store: ObjectStore, session_id: str) -> pd.DataFrame:
    """The true label intervals of an incoming session (for the scripted reviewer)."""
    key = join_key(schema.TRUTH_DIR, INCOMING_TRUTH, f"{session_id}.csv")
    return pd.read_csv(io.BytesIO(store.get_bytes(key)))
