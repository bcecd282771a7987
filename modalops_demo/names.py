"""The demo's own names: its streams, labels, metadata and file layout (declared in dataset.yaml)."""

from __future__ import annotations

from importlib.resources import files

from modalops.dataset.layout import TRUTH_DIR  # noqa: F401 - true clocks, read by the align report
from modalops.dataset.spec import SPEC_FILE

MODALITIES: tuple[str, ...] = ("camera", "audio", "vibration", "notes")
LABELS: tuple[str, ...] = ("normal", "proximity", "fault", "near_miss")
SESSIONS_MANIFEST = "sessions.csv"
MANIFEST_COLUMNS = (
    "session_id", "station_id", "site", "camera_model", "microphone", "lighting", "subject_id",
    "duration_s",
)  # fmt: skip
SESSIONS_DIR = "sessions"
CLOCK_FILE = "clock.json"
FRAMES_INDEX = "camera/frames.csv"  # columns: frame, t, file (file relative to camera/)
AUDIO_FILE = "audio.wav"
VIBRATION_FILE = "vibration.parquet"  # columns: t, ax, ay, az
NOTES_FILE = "notes.jsonl"  # one {"t": float, "text": str} per line
LABELS_FILE = "labels.csv"  # columns: start_s, end_s, label (reference clock)


def session_key(session_id: str, name: str = "") -> str:
    return "/".join(p for p in (SESSIONS_DIR, session_id, name) if p)


def spec_text() -> str:
    """The demo's dataset spec (YAML), as shipped in this package."""
    return files("modalops_demo").joinpath(SPEC_FILE).read_text(encoding="utf-8")


def demo_spec():
    """The demo's DatasetSpec."""
    from modalops.dataset.spec import spec_from_text

    return spec_from_text(spec_text(), "modalops_demo/dataset.yaml")
