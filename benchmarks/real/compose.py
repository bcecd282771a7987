"""Shared pieces of the real-data cases: per-session clocks, device resampling, the raw layout.

Every case writes a raw root the way a user's export would (one folder per session, a sessions
table, a `dataset.yaml` in the dataset spec) and, beside it, a `truth/` folder with each
session's true clocks. The platform is pointed at `raw/` only; the scorer alone reads `truth/`.
"""

from __future__ import annotations

import io
import json
import shutil
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


@dataclass(frozen=True)
class Clock:
    """A device clock: t_device = t_ref + offset_s + drift_ppm * 1e-6 * t_ref (ClockModel's form)."""

    offset_s: float = 0.0
    drift_ppm: float = 0.0

    def to_device(self, t_ref):
        return t_ref + self.offset_s + self.drift_ppm * 1e-6 * t_ref

    def to_reference(self, t_device):
        return (np.asarray(t_device) - self.offset_s) / (1.0 + self.drift_ppm * 1e-6)


def draw_clock(rng: np.random.Generator, max_offset_s: float, max_ppm: float) -> Clock:
    return Clock(
        float(rng.uniform(-max_offset_s, max_offset_s)), float(rng.uniform(-max_ppm, max_ppm))
    )


def device_times(
    clock: Clock, t_ref_start: float, t_ref_end: float, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """A device sampling at `rate` on its own clock over [t_ref_start, t_ref_end] of the reference:
    (device timestamps, the reference times they were taken at)."""
    d0, d1 = clock.to_device(t_ref_start), clock.to_device(t_ref_end)
    d = d0 + np.arange(int(np.floor((d1 - d0) * rate))) / rate
    return d, clock.to_reference(d)


def resample(t_src: np.ndarray, x: np.ndarray, t_new: np.ndarray) -> np.ndarray:
    """Linear interpolation of each column of x (rows at t_src) at t_new."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return np.interp(t_new, t_src, x)
    return np.stack([np.interp(t_new, t_src, x[:, j]) for j in range(x.shape[1])], axis=1)


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """Mono PCM16 WAV; samples in [-1, 1] are clipped there."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


@dataclass
class CaseOutput:
    """Where a case was written and what the scorer needs to know about it."""

    name: str
    raw: Path
    truth: Path
    reference: str
    estimated: list[str]  # non-reference streams whose clocks the platform estimates
    tolerance_s: float  # an offset within this of the truth counts as right
    slowest_period_s: float  # sample period of the slowest stream (precision target: a quarter)
    covers: list[str] = field(default_factory=list)
    sessions: pd.DataFrame = field(default_factory=pd.DataFrame)  # session id, split, subject


class CaseWriter:
    """Writes one case's raw root and truth folder."""

    def __init__(self, out: Path, name: str):
        self.root = out / name
        self.raw = self.root / "raw"
        self.truth = self.root / "truth"
        self.raw.mkdir(parents=True, exist_ok=True)
        self.truth.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []

    def folder(self, sid: str) -> Path:
        path = self.raw / "sessions" / sid
        path.mkdir(parents=True, exist_ok=True)
        return path

    def session(self, sid: str, clocks: dict[str, Clock], **columns) -> None:
        """Record a session's row for the sessions table and its true clocks (scorer only)."""
        self.rows.append({"session_id": sid, **columns})
        doc = {n: {"offset_s": c.offset_s, "drift_ppm": c.drift_ppm} for n, c in clocks.items()}
        (self.truth / f"{sid}.json").write_text(json.dumps(doc, indent=1))

    def labels(self, sid: str, intervals: list[tuple[float, float, str]]) -> None:
        pd.DataFrame(intervals, columns=["start_s", "end_s", "label"]).to_csv(
            self.folder(sid) / "labels.csv", index=False, float_format="%.4f"
        )

    def finish(self, spec: dict) -> pd.DataFrame:
        table = pd.DataFrame(self.rows)
        table.to_csv(self.raw / "sessions.csv", index=False)
        (self.raw / "dataset.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        return table


def read_truth(truth: Path, sid: str) -> dict[str, Clock]:
    doc = json.loads((truth / f"{sid}.json").read_text())
    return {n: Clock(v["offset_s"], v["drift_ppm"]) for n, v in doc.items()}


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono PCM16 WAV bytes -> float samples in [-1, 1] and the rate."""
    with wave.open(io.BytesIO(data), "rb") as w:
        rate, n = w.getframerate(), w.getnframes()
        x = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768.0
        if w.getnchannels() > 1:
            x = x.reshape(-1, w.getnchannels()).mean(axis=1)
    return x, rate


def with_true_clocks(raw: Path, truth: Path, work: Path) -> str:
    """A copy of `raw` whose spec reads each session's true clocks from a clock file and does not
    estimate: the label gate is measured with alignment out of the question (as issue 22 did
    with `align.mode: metadata`); truth files are read here for that purpose only. `truth/<session>.json` is {stream: {offset_s, drift_ppm}}."""
    copy = Path(work) / "raw-true-clocks"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(raw, copy)
    doc = yaml.safe_load((copy / "dataset.yaml").read_text())
    doc["sessions"]["clock_file"] = "true_clock.json"
    for name, stream in doc["streams"].items():
        if name != doc["reference"]:
            clock = {k: v for k, v in stream.get("clock", {}).items() if not k.startswith("start_")}
            stream["clock"] = {**clock, "initial": "file", "estimate": False}
    (copy / "dataset.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    folder = doc["sessions"]["folder"]
    for path in truth.glob("*.json"):
        sid = path.stem
        streams = {n: {"offset_s": c["offset_s"], "drift_ppm": c["drift_ppm"]}
                   for n, c in json.loads(path.read_text()).items()}  # fmt: skip
        target = copy / folder.format(session_id=sid) / "true_clock.json"
        target.write_text(json.dumps({"streams": streams}))
    return str(copy)
