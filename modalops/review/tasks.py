"""Label Studio tasks from routed windows: media inline as data URIs, the model's answer as a prediction.

Inline media needs no file storage on either side: a task is self-contained JSON, so the same
list goes to a server's import API or, with no server, into the import file a person uploads.
Label Studio refuses a task that lacks a key its config uses, so an absent stream keeps its key
with a placeholder (silence as long as the window for audio, which the player loads without an
error box; a small grey PNG for images; "" for text; a flat two-point series, as empty or null
ones break the editor), and its heading and the window header say it is absent.
"""

from __future__ import annotations

import base64
import io
import json
import math
import wave
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from modalops.dataset.columns import payload_column, presence_column, sample_key
from modalops.dataset.spec import DatasetSpec
from modalops.kinds.payloads import is_absent
from modalops.review.labeling import (
    CHOICES_NAME,
    HEADER_KEY,
    HEADER_NAME,
    REASONS_KEY,
    TIME_COLUMN,
    stream_key,
    stream_tag,
    timeseries_channels,
    title_key,
)
from modalops.store import ObjectStore

REQUIRED_COLUMNS = (
    "session_id",
    "window_index",
    "t_start",
    "t_end",
    "label",
    "probability",
    "reasons",
    "model_name",
    "model_version",
)


def _plain(value: Any) -> Any:
    """numpy/pandas scalars -> JSON values; NaN and pandas' NA -> None."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _image_uri(data: bytes, where: str) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        mime = "image/png"
    elif data[:3] == b"\xff\xd8\xff":
        mime = "image/jpeg"
    else:
        raise ValueError(f"{where}: frame is neither JPEG nor PNG (starts {data[:4]!r})")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _audio_uri(data: bytes, where: str) -> str:
    """Percent-encoded, not base64: Label Studio's waveform decoder appends "?lsref=1" to the
    URL (labeling.AUDIO_ATTRS), which would break base64 and here only trails the WAV's data
    chunk. It costs size: 2.7 bytes a byte of 16-bit PCM (88 KB a 1 s, 16 kHz window)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{where}: audio payload is not WAV (starts {data[:4]!r})")
    return f"data:audio/wav,{quote(data, safe='')}"


def _series(data: bytes, channels: list[str], sample_rate: float, where: str) -> dict:
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{where}: payload is not a readable .npy array ({exc})") from None
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != len(channels):
        raise ValueError(
            f"{where}: expected an array (rows, {len(channels)}) for channels {channels}, "
            f"got shape {arr.shape}"
        )
    out: dict[str, list] = {TIME_COLUMN: [round(i / sample_rate, 6) for i in range(len(arr))]}
    for j, channel in enumerate(channels):
        out[channel] = [None if not math.isfinite(v) else v for v in arr[:, j].tolist()]
    return out


def _silent_wav(duration_s: float) -> bytes:
    """Silence as long as the window, so the player's timeline reads the window's seconds; 8-bit
    at 4 kHz keeps it small (12 KB a second as a data URI; Chrome plays no rate under 3 kHz)."""
    rate = 4000
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(b"\x80" * max(1, round(duration_s * rate)))  # unsigned 8-bit: 128 is 0
    return buf.getvalue()


def _blank_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), 200).save(buf, "PNG")
    return buf.getvalue()


def _empty_value(spec: DatasetSpec, stream: str, duration_s: float) -> Any:
    tag = stream_tag(spec, stream)
    if tag == "TimeSeries":
        # a flat two-point line under an "absent here" heading: Label Studio 1.23.2 refuses an
        # empty series ("timeColumn contains non-numbers") and its editor crashes on nulls
        times = [0.0, round(max(duration_s, 1e-3), 6)]
        return {TIME_COLUMN: times, **{c: [0.0, 0.0] for c in timeseries_channels(spec, stream)}}
    if tag == "Audio":
        return _audio_uri(_silent_wav(duration_s), stream)
    if tag == "Image":
        return _image_uri(_blank_png(), stream)  # "" shows an error box where the frame would be
    return ""


def _stream_value(spec: DatasetSpec, stream: str, payload: Any, where: str) -> Any:
    """The task-data value of one present payload, by the stream's kind."""
    tag = stream_tag(spec, stream)
    if tag == "Text":
        return payload.decode("utf-8") if isinstance(payload, bytes) else str(payload)
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ValueError(f"{where}: expected bytes, got {type(payload).__name__}")
    data = bytes(payload)
    if tag == "Image":
        return _image_uri(data, where)
    if tag == "Audio":
        return _audio_uri(data, where)
    params = spec.params(stream)
    return _series(data, timeseries_channels(spec, stream), float(params.sample_rate), where)


def _present(row: pd.Series, stream: str) -> Any | None:
    """The payload of `stream` in `row`, or None when the row marks it absent."""
    flag = row.get(presence_column(stream), True)
    if flag is None or (isinstance(flag, float) and math.isnan(flag)) or not bool(flag):
        return None
    payload = row.get(payload_column(stream))
    return None if is_absent(payload) else payload


def build_tasks(spec: DatasetSpec, items: pd.DataFrame) -> list[dict]:
    """One Label Studio task (with the model's prediction) per routed window in `items`."""
    missing = [c for c in REQUIRED_COLUMNS if c not in items.columns]
    if missing:
        raise ValueError(f"review items: missing columns {missing} (have {list(items.columns)})")
    tasks = []
    for _, row in items.iterrows():
        session_id, window_index = str(row["session_id"]), int(row["window_index"])
        key = sample_key(session_id, window_index)
        t_start, t_end = float(row["t_start"]), float(row["t_end"])
        subject = _plain(row.get("subject")) if "subject" in spec.meta_columns else None
        reasons = _plain(row.get("reasons")) or ""
        model_name, model_version = str(row["model_name"]), str(_plain(row["model_version"]))
        label, probability = str(row["label"]), float(row["probability"])
        data: dict[str, Any] = {}
        absent = []
        for stream in spec.stream_names:
            payload = _present(row, stream)
            title = f"{stream} ({spec.kind_of(stream).name})"
            data[title_key(stream)] = title if payload is not None else f"{title}: absent here"
            if payload is None:
                absent.append(stream)
                data[stream_key(stream)] = _empty_value(spec, stream, t_end - t_start)
            else:
                where = f"window {key}, stream {stream!r}"
                data[stream_key(stream)] = _stream_value(spec, stream, payload, where)
        header = [
            f"session {session_id}",
            f"window {window_index}",
            f"{t_start:.2f}-{t_end:.2f} s",
            *([f"subject {subject}"] if subject is not None else []),
            f"model {model_name} v{model_version}: {label} ({probability:.2f})",
            *([f"absent: {', '.join(absent)}"] if absent else []),
        ]
        data.update(
            {
                HEADER_KEY: " | ".join(header),
                REASONS_KEY: f"Routed to review: {reasons or 'not stated'}",
                "modalops_key": key,
                "session_id": session_id,
                "window_index": window_index,
                "t_start": t_start,
                "t_end": t_end,
                # the prediction's class and score again, as plain columns of the Data Manager
                # (which lists task data keys in this order)
                "predicted_label": label,
                "predicted_probability": round(probability, 4),
                "reasons": reasons,
                "subject": subject,
                "model_name": model_name,
                "model_version": model_version,
                "spec_digest": _plain(row.get("spec_digest")),
                "metadata": {c: _plain(row.get(c)) for c in spec.metadata.columns},
            }
        )
        prediction = {
            "model_version": f"{model_name}:v{model_version}",
            "score": probability,
            "result": [
                {
                    "from_name": CHOICES_NAME,
                    "to_name": HEADER_NAME,
                    "type": "choices",
                    "value": {"choices": [label]},
                }
            ],
        }
        tasks.append({"data": data, "predictions": [prediction]})
    return tasks


def write_import_json(store: ObjectStore, key: str, tasks: list[dict]) -> str:
    """Write `tasks` as a Label Studio import file (a JSON list of tasks); returns its URI."""
    return store.put_text(key, json.dumps(tasks, ensure_ascii=False))
