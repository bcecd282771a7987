"""Time-series streams: a CSV/TSV/Parquet table with a declared time column and channel columns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modalops.dataset.errors import RawDataError
from modalops.dataset.layout import TIME_SCALE, check_times, read_table
from modalops.kinds.base import IngestedStream, Stream, StreamSource
from modalops.kinds.timing import median_rate, sampled_span


@dataclass
class TimeseriesStream(Stream):
    """Row times (device clock, seconds) and float32 values (n, C) in `params.channels` order."""

    times: np.ndarray
    values: np.ndarray
    params: Any = None
    kind: str = "timeseries"

    def span(self) -> tuple[float, float] | None:
        return sampled_span(self.times)


def _parse(data: bytes, src: StreamSource) -> TimeseriesStream:
    p = src.params
    uri = src.uri()
    df = read_table(data, uri, p.format)
    missing = [c for c in (p.time_column, *p.channels) if c not in df.columns]
    if missing:
        raise RawDataError(uri, f"missing columns {missing} (the spec's time_column and channels); "
                                f"the file has {list(df.columns)[:20]}")  # fmt: skip
    for c in (p.time_column, *p.channels):
        # pd.to_numeric would turn dates into nanoseconds since 1970: a wrong unit, not a number
        if pd.api.types.is_datetime64_any_dtype(df[c]) or pd.api.types.is_timedelta64_dtype(df[c]):
            raise RawDataError(
                uri, f"column {c!r}: holds {df[c].dtype} values; expected plain numbers"
                + (f" in {p.time_unit!r}" if c == p.time_column else "")
            )  # fmt: skip
    try:
        times = pd.to_numeric(df[p.time_column], errors="raise").to_numpy(np.float64)
    except (ValueError, TypeError) as exc:
        raise RawDataError(
            uri, f"column {p.time_column!r}: times must be numbers ({exc})"
        ) from None
    times = times * TIME_SCALE[p.time_unit]
    is_text = p.format in ("csv", "tsv") or (
        p.format == "auto" and not uri.lower().endswith((".parquet", ".pq"))
    )
    check_times(uri, times, p.time_column, first_line=2 if is_text else 1)
    cols = []
    for c in p.channels:
        try:
            cols.append(pd.to_numeric(df[c], errors="raise").to_numpy(np.float64))
        except (ValueError, TypeError) as exc:
            raise RawDataError(uri, f"column {c!r}: values must be numbers ({exc})") from None
    # Readings beyond float32's range (e.g. 1e300) become +-inf: counted as non-finite in the
    # catalog's nan_fraction and zeroed by the codec, like NaN; no overflow warning for them.
    with np.errstate(over="ignore"):
        values = np.stack(cols, axis=1).astype(np.float32)
    return TimeseriesStream(times=times, values=values, params=p)


def read(src: StreamSource) -> TimeseriesStream:
    return _parse(src.get(), src)


def ingest(src: StreamSource) -> IngestedStream:
    data = src.get()
    s = _parse(data, src)
    finite = np.isfinite(s.values)
    # A channel whose finite readings never change is a dead sensor (validation decides).
    flat = sum(
        1
        for c in range(s.values.shape[1])
        if finite[:, c].sum() > 1 and np.ptp(s.values[finite[:, c], c]) == 0.0
    )
    return IngestedStream(dict(
        content_hash=hashlib.sha256(data).hexdigest(), n_bytes=len(data),
        duration_s=float(s.times[-1] - s.times[0]), sample_rate=median_rate(s.times),
        n_items=len(s.times), t_first=float(s.times[0]), t_last=float(s.times[-1]),
        nan_fraction=float(1.0 - finite.mean()), n_channels=int(s.values.shape[1]),
        flat_channels=flat,
    ))  # fmt: skip
