"""The quarantine manifest: every rejected file, stream, session or sample, with its reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

QUARANTINE_COLUMNS = ("stage", "session_id", "stream", "uri", "window_index", "reason")


@dataclass(frozen=True)
class QuarantineRecord:
    """One rejected item. `window_index` is set for samples, None for files/streams/sessions."""

    stage: str
    session_id: str | None
    stream: str | None  # a spec stream name, "clock" or "labels"; None for a session or window
    uri: str | None
    reason: str
    window_index: int | None = None


def to_frame(records: list[QuarantineRecord]) -> pd.DataFrame:
    """Records as a DataFrame with the manifest's columns (an empty one when there are none)."""
    if not records:
        return empty_frame()
    df = pd.DataFrame([asdict(r) for r in records])
    df["window_index"] = df["window_index"].astype("Int64")
    return df[list(QUARANTINE_COLUMNS)]


def empty_frame() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="string") for c in QUARANTINE_COLUMNS})
    df["window_index"] = df["window_index"].astype("Int64")
    return df


def concat(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate manifests from several stages, keeping the column order."""
    frames = tuple(f for f in frames if f is not None and len(f))
    if not frames:
        return empty_frame()
    return pd.concat(frames, ignore_index=True)[list(QUARANTINE_COLUMNS)]
