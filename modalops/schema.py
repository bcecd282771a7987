"""Names shared by every stage: modalities, labels, raw-layout paths, table columns, shard keys."""

from __future__ import annotations

MODALITIES: tuple[str, ...] = ("camera", "audio", "vibration", "notes")
LABELS: tuple[str, ...] = ("normal", "proximity", "fault", "near_miss")
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}
SPLITS: tuple[str, ...] = ("train", "val", "test")

# ---- raw layout (docs/data-layout.md); paths are relative to the raw root -----------------
SESSIONS_MANIFEST = "sessions.csv"
MANIFEST_COLUMNS = (
    "session_id",
    "station_id",
    "site",
    "camera_model",
    "microphone",
    "lighting",
    "subject_id",
    "duration_s",
)
SESSIONS_DIR = "sessions"
CLOCK_FILE = "clock.json"
FRAMES_INDEX = "camera/frames.csv"  # columns: frame, t, file (file relative to camera/)
AUDIO_FILE = "audio.wav"
VIBRATION_FILE = "vibration.parquet"  # columns: t, ax, ay, az
NOTES_FILE = "notes.jsonl"  # one {"t": float, "text": str} per line
LABELS_FILE = "labels.csv"  # columns: start_s, end_s, label (reference clock)
SYNC_FILE = "sync.json"  # optional explicit sync markers per stream
TRUTH_DIR = "truth"  # truth/<session_id>.json: generator's true clocks, for evaluation only

# Metadata columns carried from the manifest into every sample (subject is pseudonymised).
META_COLUMNS = ("station_id", "site", "camera_model", "microphone", "lighting", "subject")

# ---- aligned-sample table (one row per window) ---------------------------------------------
PAYLOAD_COLUMNS = {
    "camera": "camera_jpeg",  # binary: JPEG bytes of the frame nearest the window centre
    "audio": "audio_wav",  # binary: WAV bytes (PCM16 mono) of the window's audio slice
    "vibration": "vibration_npy",  # binary: .npy bytes of a float32 (n, 3) telemetry slice
    "notes": "notes_text",  # string: notes within tolerance, joined with " | " ("" if none)
}
PRESENCE_COLUMNS = {m: f"has_{m}" for m in MODALITIES}

# ---- WebDataset sample keys ------------------------------------------------------------------
SHARD_EXT = {"camera": "jpg", "audio": "wav", "vibration": "vib.npy", "notes": "txt"}
SHARD_META_EXT = "json"  # label, label_index, session_id, window_index, metadata, presence


def sample_key(session_id: str, window_index: int) -> str:
    """WebDataset key of one window; unique across the dataset, no dots (webdataset splits on them)."""
    return f"{session_id}__{window_index:06d}".replace(".", "_")
