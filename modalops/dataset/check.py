"""`modalops dataset check`: every problem of a raw folder against its spec, without running the pipeline.

Reads what ingest reads (sessions table, clock files, labels, every stream through its kind)
and lists each problem with its file, and its line where there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modalops.dataset.errors import RawDataError
from modalops.dataset.layout import (
    list_session,
    read_clock_file,
    read_labels,
    read_sessions,
    session_folder,
    stream_source,
)
from modalops.dataset.spec import DatasetSpec
from modalops.kinds import get_kind


@dataclass(frozen=True)
class Problem:
    """One problem: the file (URI) it is in, and what is wrong (with the line where known)."""

    uri: str
    problem: str
    session_id: str | None = None
    stream: str | None = None

    def line(self) -> str:
        return f"{self.uri}: {self.problem}"


def _problem(err: RawDataError, sid: str | None, stream: str | None) -> Problem:
    return Problem(err.path, err.problem, sid, stream)


def check_dataset(
    store: Any, spec: DatasetSpec, max_sessions: int | None = None
) -> tuple[list[Problem], int]:
    """(problems, sessions checked). An empty list means ingest would quarantine nothing."""
    try:
        table = read_sessions(store, spec)
    except RawDataError as err:
        return [_problem(err, None, None)], 0
    if max_sessions is not None:
        table = table.head(max_sessions)
    problems: list[Problem] = []
    folders = {spec.sessions.folder.split("{session_id}")[0]}
    prefix = next(iter(folders)).strip("/")
    present = {k[len(prefix) :].lstrip("/").split("/")[0] for k in store.list(prefix)}
    listed = set(table[spec.sessions.id_column].astype(str))
    for sid in sorted(present - listed):
        if sid and session_folder(spec, sid).startswith(prefix):
            problems.append(
                Problem(
                    store.uri(session_folder(spec, sid)),
                    f"folder not listed in {spec.sessions.table}",
                    sid,
                )
            )
    for row in table.to_dict("records"):
        sid = str(row[spec.sessions.id_column])
        if sid not in present:
            problems.append(Problem(store.uri(session_folder(spec, sid)),
                                    f"session folder is missing (listed in {spec.sessions.table})", sid))  # fmt: skip
            continue
        try:
            _, entries = read_clock_file(store, spec, sid)
        except RawDataError as err:
            problems.append(_problem(err, sid, "clock"))
            entries = {}
        try:
            read_labels(store, spec, sid, row)
        except RawDataError as err:
            problems.append(_problem(err, sid, "labels"))
        try:
            listing = list_session(store, spec, sid)
        except Exception as exc:  # noqa: BLE001 - a listing failure is one problem, not a crash
            problems.append(
                Problem(store.uri(session_folder(spec, sid)), f"cannot list ({exc})", sid)
            )
            continue
        for name, s in spec.streams.items():
            try:
                src = stream_source(store, spec, sid, name, entries, listing)
                got = get_kind(s.kind).read.ingest(src)
            except RawDataError as err:
                problems.append(_problem(err, sid, name))
                continue
            for uri, reason in got.item_problems:
                problems.append(Problem(uri, reason.removeprefix(f"{uri}: "), sid, name))
            if got.status != "ok" and got.reason:
                uri = src.uri()
                problems.append(Problem(uri, got.reason.removeprefix(f"{uri}: "), sid, name))
    return problems, len(table)
