"""Talk to a Label Studio server with label-studio-sdk: one project per model, idempotent imports,
completed reviews back as a table.

`completed_reviews(project_id)` returns one row per submitted (not skipped) annotation, with the
columns the feedback flow consumes:

    task_id          int    Label Studio task id
    annotation_id    int    Label Studio annotation id
    session_id       str    the window's session
    window_index     int    the window's index in its session
    t_start, t_end   float  window bounds, seconds on the reference clock
    label            str    the reviewer's class (one of spec.labels.classes)
    reviewer         str    the annotator's email (username if no email; user id if neither)
    reviewed_at      str    ISO-8601 UTC time the annotation was last saved
    predicted_label  str    the model's class shown to the reviewer (None if no prediction)
    predicted_score  float  the model's calibrated top-class probability
    model_version    str    "<model_name>:v<model_version>" of that prediction

Annotations the reviewer skipped (`was_cancelled`) or submitted without a class are left out. A
task with several annotations (several reviewers) gives several rows.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from modalops.config.review import ReviewConfig
from modalops.dataset.spec import DatasetSpec
from modalops.review.labeling import CHOICES_NAME, config_semantics, labeling_config

REVIEW_COLUMNS = [
    "task_id",
    "annotation_id",
    "session_id",
    "window_index",
    "t_start",
    "t_end",
    "label",
    "reviewer",
    "reviewed_at",
    "predicted_label",
    "predicted_score",
    "model_version",
]
SPEC_MARK = "modalops spec digest: "
# The project's Data Manager tab, kept by modalops: what a reviewer reads of each task (Data
# Manager column ids, "tasks:<column>" or "tasks:data.<task data key>"); every other column the
# server lists is hidden (inline media, JSON, modalops' own keys)
VIEW_TITLE = "Review"
# column id -> width in px (the Data Manager's default widths push the reasons off a 1280 px
# screen)
VIEW_COLUMNS = {
    "tasks:id": 60,
    "tasks:total_annotations": 50,
    "tasks:annotators": 100,
    "tasks:data.session_id": 100,
    "tasks:data.window_index": 110,
    "tasks:data.t_start": 75,
    "tasks:data.t_end": 75,
    "tasks:data.predicted_label": 120,
    "tasks:data.predicted_probability": 160,
    "tasks:data.reasons": 200,
}
# task data keys are typed by the tasks' JSON only as "Unknown": numbers filter and sort as numbers
NUMBER_COLUMNS = (
    "tasks:data.window_index",
    "tasks:data.t_start",
    "tasks:data.t_end",
    "tasks:data.predicted_probability",
)
# the task list beside the labeling editor is narrow: the window and the model's answer
LABELING_COLUMNS = (
    "tasks:id",
    "tasks:data.session_id",
    "tasks:data.window_index",
    "tasks:data.predicted_label",
)
IMPORT_BATCH = 200  # tasks per request: inline media make tasks large; LS caps a request at 200 MB


class ReviewError(RuntimeError):
    """A Label Studio project or request is not what modalops expects; the message says why."""


def _as_dict(obj: Any) -> dict:
    if isinstance(obj, dict):
        return obj
    # warnings off: the sdk types a few counters the 1.23 server sends as ints as str
    return obj.model_dump(warnings=False) if hasattr(obj, "model_dump") else dict(obj)


def _iso_utc(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _choice(result: list[dict] | None) -> str | None:
    for region in result or []:
        if region.get("from_name") == CHOICES_NAME and region.get("type") == "choices":
            choices = (region.get("value") or {}).get("choices") or []
            if choices:
                return str(choices[0])
    return None


class ReviewClient:
    """A Label Studio server at `url`, reached with an API token (legacy or personal access)."""

    def __init__(self, url: str, token: str, project_prefix: str = "modalops"):
        from label_studio_sdk import LabelStudio  # heavy import, only when a server is used

        self.url = url.rstrip("/")
        self.project_prefix = project_prefix
        self._ls = LabelStudio(base_url=self.url, api_key=token)

    # ---- projects ----------------------------------------------------------------------------
    def project_title(self, model_name: str) -> str:
        return f"{self.project_prefix}:{model_name}"

    def find_project(self, model_name: str) -> dict | None:
        title = self.project_title(model_name)
        for project in self._ls.projects.list(title=title):
            project = _as_dict(project)
            if project.get("title") == title:
                return project
        return None

    def ensure_project(self, spec: DatasetSpec, model_name: str) -> int:
        """The id of the model's project, created with the spec's labeling config if absent.

        An existing project whose config differs (the spec changed since it was created) is an
        error: importing into it would show the reviewer the wrong streams or classes.
        """
        config = labeling_config(spec)
        title = self.project_title(model_name)
        existing = self.find_project(model_name)
        if existing is not None:
            project = _as_dict(self._ls.projects.get(id=existing["id"]))
            if config_semantics(project.get("label_config") or "") != config_semantics(config):
                was = (project.get("description") or "").partition(SPEC_MARK)[2].strip() or "?"
                raise ReviewError(
                    f"Label Studio project {title!r} (id {project['id']}, {self.url}) has a "
                    "different labeling config from the one this dataset spec gives (project "
                    f"made for spec digest {was[:12]}, this spec {spec.digest()[:12]}): its "
                    "streams, classes or views changed, and importing would show the reviewer "
                    "the wrong thing. Rename or delete that project in Label Studio, or review "
                    "under a new model name."
                )
            if _normalise(project.get("label_config")) != _normalise(config):
                # same streams and classes, shown another way (a project made by an earlier
                # modalops, e.g. audio without its waveform): the reviewer gets the new view
                self._ls.projects.update(id=project["id"], label_config=config)
            self.ensure_view(int(project["id"]))
            return int(project["id"])
        created = self._ls.projects.create(
            title=title,
            label_config=config,
            description=f"Windows routed to review for model {model_name}. "
            f"{SPEC_MARK}{spec.digest()}",
            show_collab_predictions=True,  # the reviewer starts from the model's answer
            show_skip_button=True,
        )
        project_id = int(_as_dict(created)["id"])
        self.ensure_view(project_id)
        return project_id

    def columns(self, project_id: int) -> list[str]:
        """The Data Manager's column ids of the project (task data keys from its labeling config
        and from the tasks imported so far)."""
        # no sdk method for /api/dm/columns; its client wrapper adds the auth header either token
        # kind needs
        resp = self._ls._client_wrapper.httpx_client.request(
            "api/dm/columns/", method="GET", params={"project": project_id}
        )
        if resp.status_code != 200:
            raise ReviewError(
                f"Label Studio {self.url} answered {resp.status_code} to the Data Manager's "
                f"columns of project {project_id}: {resp.text[:300]}"
            )
        return column_ids(resp.json()["columns"])

    def ensure_view(self, project_id: int) -> int:
        """The id of the project's Review tab, created first (so the Data Manager opens on it) or
        reset to the reviewer's columns; runs again after each import, as new task data keys
        become columns only then (and the Data Manager drops hidden columns it does not know)."""
        data = review_view(self.columns(project_id))
        for view in self._ls.views.list(project=project_id):
            view = _as_dict(view)
            if (view.get("data") or {}).get("title") == VIEW_TITLE:
                merged = {**view["data"], **data}  # filters or ordering a reviewer set stay
                self._ls.views.update(id=str(view["id"]), project=project_id, data=merged)
                return int(view["id"])
        return int(_as_dict(self._ls.views.create(project=project_id, data=data))["id"])

    # ---- tasks -------------------------------------------------------------------------------
    def _tasks(self, project_id: int, fields: str = "task_only") -> list[dict]:
        return [
            _as_dict(t)
            for t in self._ls.tasks.list(project=project_id, fields=fields, page_size=100)
        ]

    def existing_keys(self, project_id: int) -> set[str]:
        return {
            str(t["data"]["modalops_key"])
            for t in self._tasks(project_id)
            if "modalops_key" in (t.get("data") or {})
        }

    def import_tasks(self, project_id: int, tasks: list[dict]) -> int:
        """Import the tasks whose window (data.modalops_key) the project lacks; returns how many."""
        seen = self.existing_keys(project_id)
        new = []
        for task in tasks:
            key = task.get("data", {}).get("modalops_key")
            if key is None:
                raise ReviewError("task without data.modalops_key: build tasks with build_tasks()")
            if key not in seen:
                seen.add(key)
                new.append(task)
        imported = 0
        for i in range(0, len(new), IMPORT_BATCH):
            resp = _as_dict(
                self._ls.projects.import_tasks(id=project_id, request=new[i : i + IMPORT_BATCH])
            )
            imported += int(resp.get("task_count") or 0)
        versions = {p["model_version"] for t in new for p in t.get("predictions", [])}
        if len(versions) == 1:
            # Label Studio pre-labels with the predictions of the project's model_version
            self._ls.projects.update(id=project_id, model_version=versions.pop())
        if new:
            self.ensure_view(project_id)  # the new tasks' data keys are columns now
        return imported

    # ---- results -----------------------------------------------------------------------------
    def _users(self) -> dict[int, str]:
        users = {}
        for user in self._ls.users.list():
            user = _as_dict(user)
            users[int(user["id"])] = user.get("email") or user.get("username") or str(user["id"])
        return users

    def completed_reviews(self, project_id: int) -> pd.DataFrame:
        """One row per submitted annotation (skips excluded); columns in the module docstring."""
        users: dict[int, str] | None = None
        rows = []
        for task in self._tasks(project_id, fields="all"):
            data = task.get("data") or {}
            predictions = [_as_dict(p) for p in task.get("predictions") or []]
            prediction = next((p for p in predictions if _choice(p.get("result"))), None)
            for ann in task.get("annotations") or []:
                ann = _as_dict(ann)
                if ann.get("was_cancelled"):
                    continue
                label = _choice(ann.get("result"))
                if label is None:
                    continue
                who = ann.get("completed_by")
                if isinstance(who, dict):
                    reviewer = who.get("email") or who.get("username") or str(who.get("id"))
                else:
                    users = users if users is not None else self._users()
                    reviewer = users.get(int(who), str(who)) if who is not None else None
                rows.append(
                    {
                        "task_id": int(task["id"]),
                        "annotation_id": int(ann["id"]),
                        "session_id": data.get("session_id"),
                        "window_index": data.get("window_index"),
                        "t_start": data.get("t_start"),
                        "t_end": data.get("t_end"),
                        "label": label,
                        "reviewer": reviewer,
                        "reviewed_at": _iso_utc(ann.get("updated_at") or ann.get("created_at")),
                        "predicted_label": _choice(prediction["result"]) if prediction else None,
                        "predicted_score": prediction.get("score") if prediction else None,
                        "model_version": prediction.get("model_version") if prediction else None,
                    }
                )
        frame = pd.DataFrame(rows, columns=REVIEW_COLUMNS)
        return frame.astype({"task_id": "int64", "annotation_id": "int64"}) if rows else frame


def column_ids(columns: list[dict]) -> list[str]:
    """Data Manager ids ("tasks:id", "tasks:data.session_id") of /api/dm/columns' entries, less
    the groups (the "data" column whose children are the task data keys)."""
    return [
        f"{c['target']}:{c['parent'] + '.' if c.get('parent') else ''}{c['id']}"
        for c in columns
        if not c.get("children")
    ]


def review_view(columns: list[str]) -> dict:
    """The Review tab's data: of `columns` (Data Manager ids), all but the reviewer's hidden."""
    return {
        "title": VIEW_TITLE,
        "hiddenColumns": {
            "explore": [c for c in columns if c not in VIEW_COLUMNS],
            "labeling": [c for c in columns if c not in LABELING_COLUMNS],
        },
        "columnsWidth": {c: w for c, w in VIEW_COLUMNS.items() if c in columns},
        "columnsDisplayType": {c: "Number" for c in NUMBER_COLUMNS if c in columns},
    }


def _normalise(xml: str | None) -> str:
    return " ".join((xml or "").split())


def resolve_review_target(cfg: ReviewConfig) -> tuple[str, str] | None:
    """(url, token): cfg.url with the token from $cfg.api_key_env, else the local server, else None.

    None means no server answers: write the import-JSON fallback instead.
    """
    from modalops.review.service import find_label_studio

    if cfg.url:
        token = os.environ.get(cfg.api_key_env)
        if not token:
            raise ReviewError(
                f"review.url is {cfg.url!r} but ${cfg.api_key_env} is not set: export the "
                "Label Studio API token there (Account & Settings > Access token)"
            )
        return cfg.url.rstrip("/"), token
    return find_label_studio(cfg.home)
