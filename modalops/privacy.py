"""Where a subject's data lives, and forgetting it: the logic of `modalops privacy` (Prefect-free).

A subject is found through the sessions table's subject column (`spec.metadata.subject`); from
their sessions and their pseudonym (`ingest.pseudonymise` with `ingest.subject_salt`) the report
follows every copy the platform made: dataset versions whose splits hold one of the sessions,
model versions trained on those versions (MLflow tag `dataset_version`), batch prediction files
and review tasks. `forget` deletes the raw data (session folders, sessions-table rows, label
corrections) and writes an audit record with counts and version ids only: no subject id, no
pseudonym, no session id (each of those identifies the person).
"""

from __future__ import annotations

import getpass
import io
import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from modalops.dataset.corrections import corrections_folder
from modalops.dataset.layout import (
    read_sessions,
    read_table,
    session_folder,
    session_id_problem,
    table_row,
)
from modalops.dataset.spec import DatasetSpec
from modalops.ingest.recordings import pseudonymise
from modalops.shard.shards import DATASETS_PREFIX, MANIFEST_NAME, DatasetManifest
from modalops.store import ObjectStore, join_key

AUDIT_PREFIX = "privacy/audit"
PREDICTIONS_SUFFIX = "inference/predictions.parquet"
IMPORT_JSON_SUFFIX = "review/import.json"
_PARQUET = re.compile(r"\.parquet$")


class PrivacyError(ValueError):
    """A privacy request cannot be carried out as asked; the message says why."""


@dataclass
class SubjectReport:
    """Every place a subject's data was found (`modalops privacy subject`)."""

    pseudonym: str
    sessions: list[str]
    dataset_versions: list[str]
    model_versions: list[dict[str, str]]  # {"name", "version", "dataset_version"}
    predictions: list[dict[str, Any]]  # {"uri", "rows"}
    review_tasks: list[dict[str, Any]]  # {"source", "where", "tasks", "task_ids"}
    raw_objects: list[str] = field(default_factory=list)  # raw keys of the subject's sessions
    correction_rows: int = 0
    caveats: list[str] = field(default_factory=list)  # e.g. "Label Studio not reachable"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rows(self) -> list[tuple[str, str, str]]:
        """(what, id, detail) rows for a table."""
        out = [("pseudonym", self.pseudonym, "")]
        out += [("session", s, "raw") for s in self.sessions]
        out += [
            ("dataset version", v, "splits hold the subject's sessions")
            for v in self.dataset_versions
        ]
        out += [
            ("model version", f"{m['name']}/{m['version']}", f"trained on {m['dataset_version']}")
            for m in self.model_versions
        ]
        out += [("predictions", p["uri"], f"{p['rows']} row(s)") for p in self.predictions]
        out += [
            ("review tasks", r["where"], f"{r['tasks']} task(s) ({r['source']})")
            for r in self.review_tasks
        ]
        if self.correction_rows:
            out.append(("label corrections", "", f"{self.correction_rows} row(s)"))
        return out


# ---- finding --------------------------------------------------------------------------------


def subject_sessions(raw: ObjectStore, spec: DatasetSpec, subject_id: str) -> list[str]:
    """Session ids whose subject column (spec.metadata.subject) equals `subject_id`.

    Refused (PrivacyError): a subject id that is empty or has surrounding spaces or control
    characters (an empty one matched every session whose subject cell is empty), and a session
    id of the subject's that `session_id_problem` refuses: its folder would not be that
    session's alone ('/' named the folder of every session, issue 23), so nothing is deleted.
    """
    column = spec.metadata.subject
    if not column:
        raise PrivacyError(
            f"dataset spec {spec.name!r} declares no metadata.subject column: subjects cannot "
            "be found (declare it in dataset.yaml)"
        )
    subject_id = str(subject_id)
    if not subject_id.strip() or subject_id != subject_id.strip() or not subject_id.isprintable():
        raise PrivacyError(
            f"subject id {subject_id!r}: expected the subject's id exactly as the sessions "
            f"table's {column!r} column holds it (not empty, no surrounding spaces or control "
            "characters)"
        )
    table = read_sessions(raw, spec)
    mine = table[table[column].notna() & (table[column].astype(str) == subject_id)]
    ids = mine[spec.sessions.id_column].astype(str)
    for index, sid in ids.items():
        problem = session_id_problem(sid)
        if problem:
            where = table_row(raw.uri(spec.sessions.table), int(index))
            raise PrivacyError(
                f"{where}: {problem}; its folder would not be that session's alone, so nothing "
                "was looked up or deleted: correct the id in the sessions table (and rename its "
                "folder), then ask again"
            )
    return sorted(ids)


def dataset_versions_with(store: ObjectStore, sessions: set[str]) -> list[str]:
    """Dataset versions (manifests in the store) whose splits contain one of `sessions`."""
    out = []
    for key in store.list(DATASETS_PREFIX):
        parts = key.split("/")
        if len(parts) != 3 or parts[2] != MANIFEST_NAME:
            continue
        try:
            manifest = DatasetManifest.from_json(store.get_text(key), source=store.uri(key))
        except ValueError as exc:  # skipping it could miss a copy of the subject's data
            raise PrivacyError(
                f"{store.uri(key)}: cannot read this dataset manifest ({exc}); it may hold "
                "the subject's sessions, so nothing is listed or deleted until it is readable "
                "or removed"
            ) from None
        if any(sessions & set(split.sessions) for split in manifest.splits.values()):
            out.append(manifest.version)
    return sorted(out)


def model_versions_on(tracking_uri: str, versions: set[str]) -> list[dict[str, str]]:
    """Registered MLflow model versions whose `dataset_version` tag is one of `versions`."""
    if not versions:
        return []
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    out = []
    for model in client.search_registered_models():
        for mv in client.search_model_versions(f"name='{model.name}'"):
            dv = (mv.tags or {}).get("dataset_version")
            if dv in versions:
                out.append({"name": model.name, "version": str(mv.version), "dataset_version": dv})
    return sorted(out, key=lambda m: (m["name"], int(m["version"])))


def _matches(frame: pd.DataFrame, sessions: set[str], pseudonym: str) -> pd.Series:
    hit = pd.Series(False, index=frame.index)
    if "session_id" in frame.columns:
        hit |= frame["session_id"].astype(str).isin(sessions)
    if "subject" in frame.columns:
        hit |= frame["subject"].astype(str) == pseudonym
    return hit


def prediction_files_with(
    store: ObjectStore, sessions: set[str], pseudonym: str
) -> list[dict[str, Any]]:
    """Batch prediction files (runs/<run>/inference/predictions.parquet) holding the subject."""
    out = []
    for key in store.list("runs"):
        if not key.endswith(PREDICTIONS_SUFFIX):
            continue
        frame = pd.read_parquet(io.BytesIO(store.get_bytes(key)))
        rows = int(_matches(frame, sessions, pseudonym).sum())
        if rows:
            out.append({"uri": store.uri(key), "rows": rows})
    return out


def _task_hits(tasks: list[dict], sessions: set[str], pseudonym: str) -> list[str]:
    ids = []
    for i, task in enumerate(tasks):
        data = task.get("data") or {}
        if str(data.get("session_id")) in sessions or data.get("subject") == pseudonym:
            ids.append(str(task.get("id", i)))
    return ids


def review_tasks_in_files(store: ObjectStore, sessions: set[str], pseudonym: str) -> list[dict]:
    """Review tasks in the import JSON files the review task kept (runs/<run>/review/import.json)."""
    out = []
    for key in store.list("runs"):
        if not key.endswith(IMPORT_JSON_SUFFIX):
            continue
        tasks = json.loads(store.get_text(key))
        ids = _task_hits(tasks if isinstance(tasks, list) else [], sessions, pseudonym)
        if ids:
            out.append(
                {
                    "source": "import-json",
                    "where": store.uri(key),
                    "tasks": len(ids),
                    "task_ids": ids,
                }
            )
    return out


def review_tasks_in_label_studio(
    url: str, token: str, prefix: str, sessions: set[str], pseudonym: str
) -> list[dict]:
    """Review tasks on a Label Studio server, in the projects titled '<prefix>:<model>'."""
    from modalops.review.client import ReviewClient

    client = ReviewClient(url, token, project_prefix=prefix)
    out = []
    for project in client._ls.projects.list():
        title = str(getattr(project, "title", "") or "")
        if not title.startswith(f"{prefix}:"):
            continue
        tasks = client._tasks(int(project.id))
        ids = _task_hits(tasks, sessions, pseudonym)
        if ids:
            out.append(
                {
                    "source": "label-studio",
                    "where": f"{url} project {title!r}",
                    "tasks": len(ids),
                    "task_ids": ids,
                }
            )
    return out


def _raw_objects(raw: ObjectStore, spec: DatasetSpec, sessions: list[str]) -> list[str]:
    keys: list[str] = []
    for sid in sessions:
        folder = session_folder(spec, sid)
        keys += [k for k in raw.list(folder) if k == folder or k.startswith(folder + "/")]
    return sorted(keys)


def _correction_keys(raw: ObjectStore, spec: DatasetSpec) -> list[str]:
    folder = corrections_folder(spec)
    return sorted(k for k in raw.list(folder) if _PARQUET.search(k))


def _correction_rows(raw: ObjectStore, spec: DatasetSpec, sessions: set[str]) -> int:
    n = 0
    for key in _correction_keys(raw, spec):
        frame = pd.read_parquet(io.BytesIO(raw.get_bytes(key)))
        n += int(_matches(frame, sessions, "\0").sum())
    return n


def find_subject(
    raw: ObjectStore,
    store: ObjectStore,
    spec: DatasetSpec,
    subject_id: str,
    *,
    salt: str,
    tracking_uri: str | None,
    review_target: tuple[str, str] | None = None,
    review_prefix: str = "modalops",
) -> SubjectReport:
    """Every place `subject_id`'s data was found. `review_target` (url, token) is a Label Studio
    server to search; without one (or when it does not answer) the import JSON files are."""
    sessions = subject_sessions(raw, spec, subject_id)
    pseudonym = pseudonymise(str(subject_id), salt)
    wanted = set(sessions)
    versions = dataset_versions_with(store, wanted)
    caveats: list[str] = []
    models = model_versions_on(tracking_uri, set(versions)) if tracking_uri else []
    review = review_tasks_in_files(store, wanted, pseudonym)
    if review_target is not None:
        try:
            review += review_tasks_in_label_studio(*review_target, review_prefix, wanted, pseudonym)
        except Exception as exc:  # the SDK raises httpx and API errors; the files still count
            caveats.append(
                f"Label Studio at {review_target[0]} not searched ({type(exc).__name__})"
            )
    else:
        caveats.append("no Label Studio server answered: searched the review import files only")
    return SubjectReport(
        pseudonym=pseudonym,
        sessions=sessions,
        dataset_versions=versions,
        model_versions=models,
        predictions=prediction_files_with(store, wanted, pseudonym),
        review_tasks=review,
        raw_objects=_raw_objects(raw, spec, sessions),
        correction_rows=_correction_rows(raw, spec, wanted),
        caveats=caveats,
    )


# ---- forgetting -----------------------------------------------------------------------------


def _write_table_like(raw: ObjectStore, key: str, frame: pd.DataFrame) -> None:
    """Write the sessions table back in the format it was read in (by its extension)."""
    if key.endswith(".parquet"):
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        raw.put_bytes(key, buf.getvalue())
    elif key.endswith((".tsv", ".tab")):
        raw.put_text(key, frame.to_csv(index=False, sep="\t"))
    elif key.endswith(".csv"):
        raw.put_text(key, frame.to_csv(index=False))
    else:
        raise PrivacyError(
            f"{raw.uri(key)}: cannot rewrite a sessions table of this format (csv, tsv, parquet)"
        )


def forget_subject(
    raw: ObjectStore,
    spec: DatasetSpec,
    report: SubjectReport,
    *,
    actor: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Delete the subject's raw data named in `report` and write the audit record.

    Deleted: every object in their session folders, their rows of the sessions table, and
    their rows of every label-corrections file (rewritten without them). Not deleted, listed in
    the audit record to be rebuilt or removed: the dataset versions, model versions, prediction
    files and review tasks that still hold copies. Returns the audit record.
    """
    sessions = set(report.sessions)
    for key in report.raw_objects:
        raw.delete(key)
    table_key = spec.sessions.table
    table = read_table(
        raw.get_bytes(table_key), raw.uri(table_key), dtype=str, keep_default_na=False
    )
    ids = table[spec.sessions.id_column].astype(str)
    _write_table_like(raw, table_key, table[~ids.isin(sessions)].reset_index(drop=True))
    removed_corrections = 0
    for key in _correction_keys(raw, spec):
        frame = pd.read_parquet(io.BytesIO(raw.get_bytes(key)))
        hit = _matches(frame, sessions, "\0")
        if hit.any():
            removed_corrections += int(hit.sum())
            buf = io.BytesIO()
            frame[~hit].reset_index(drop=True).to_parquet(buf, index=False)
            raw.put_bytes(key, buf.getvalue())
    when = (now or datetime.now(UTC)).astimezone(UTC)
    record = {
        "action": "forget-subject",
        "request_id": uuid.uuid4().hex,
        "at": when.isoformat(),
        "by": actor or getpass.getuser(),
        "dataset": spec.name,
        # counts only: a subject id, pseudonym or session id would identify the person
        "deleted": {
            "sessions": len(sessions),
            "raw_objects": len(report.raw_objects),
            "sessions_table_rows": int(ids.isin(sessions).sum()),
            "label_correction_rows": removed_corrections,
        },
        "to_rebuild": {
            "dataset_versions": list(report.dataset_versions),
            "model_versions": [f"{m['name']}/{m['version']}" for m in report.model_versions],
        },
        "still_holding_copies": {
            "prediction_files": [p["uri"] for p in report.predictions],
            "review_tasks": sum(int(r["tasks"]) for r in report.review_tasks),
            "review_task_places": [r["where"] for r in report.review_tasks],
        },
    }
    stamp = when.strftime("%Y%m%dT%H%M%S%fZ")
    key = join_key(AUDIT_PREFIX, f"{stamp}.json")
    raw.put_text(key, json.dumps(record, indent=2))
    record["audit_key"] = key
    return record
