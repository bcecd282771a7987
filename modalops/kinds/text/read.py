"""Text streams: JSON lines, each an event with a time field and a text field."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from modalops.dataset.errors import RawDataError
from modalops.dataset.layout import TIME_SCALE
from modalops.kinds.base import IngestedStream, Stream, StreamSource


@dataclass
class TextStream(Stream):
    """Event times (device clock, seconds, sorted) and their texts."""

    times: np.ndarray
    texts: list[str]
    params: Any = None
    kind: str = "text"

    def span(self) -> tuple[float, float] | None:
        if self.times.size == 0:
            return None
        return float(self.times[0]), float(self.times[-1])


def _parse(data: bytes, src: StreamSource) -> TextStream:
    p = src.params
    uri = src.uri()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RawDataError(
            uri, f"line {line}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    times, texts = [], []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            t = float(rec[p.time_field])
            if not np.isfinite(t):
                raise ValueError(f"{p.time_field} is not finite")
            times.append(t)
            texts.append(str(rec[p.text_field]))
        except (ValueError, KeyError, TypeError) as exc:
            raise RawDataError(
                uri, f"line {lineno}: expected a JSON object with {p.time_field!r} (number) and "
                f"{p.text_field!r} (text) ({exc!r})"
            ) from None  # fmt: skip
    t = np.asarray(times, dtype=np.float64) * TIME_SCALE[p.time_unit]
    # Events typed by people carry coarse timestamps: order them rather than reject.
    order = np.argsort(t, kind="stable")
    return TextStream(times=t[order], texts=[texts[i] for i in order], params=p)


def read(src: StreamSource) -> TextStream:
    return _parse(src.get(), src)


def ingest(src: StreamSource) -> IngestedStream:
    data = src.get()
    s = _parse(data, src)
    has = len(s.texts) > 0
    return IngestedStream(dict(
        content_hash=hashlib.sha256(data).hexdigest(), n_bytes=len(data), n_items=len(s.texts),
        t_first=float(s.times[0]) if has else None, t_last=float(s.times[-1]) if has else None,
        duration_s=float(s.times[-1] - s.times[0]) if has else None,
    ))  # fmt: skip
