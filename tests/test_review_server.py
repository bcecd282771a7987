"""Review against a real Label Studio 1.23.2: project, idempotent import, a scripted reviewer, results.

The Label Studio venv is installed once per machine (first time ~1-4 min) at
$MODALOPS_LABEL_STUDIO_VENV, else under the suite's cache outside the clone
(tests/conftest.py: suite_cache_dir, ~/.cache/modalops-tests); each session starts
its own server on a free port with a temporary home.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from modalops.config.review import ReviewConfig
from modalops.dataset.columns import sample_key
from modalops.dataset.spec import DatasetSpec, load_spec_file
from modalops.review.client import (
    REVIEW_COLUMNS,
    VIEW_COLUMNS,
    VIEW_TITLE,
    ReviewClient,
    ReviewError,
    column_ids,
    resolve_review_target,
)
from modalops.review.labeling import (
    CHOICES_NAME,
    HEADER_NAME,
    labeling_config,
    stream_key,
    title_key,
)
from modalops.review.service import (
    credentials,
    find_label_studio,
    start_label_studio,
    stop_label_studio,
)
from modalops.review.tasks import build_tasks
from modalops.services import port_is_open
from tests.test_review import DEMO_SPEC, review_items

pytestmark = pytest.mark.slow


def _api(url: str, token: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (local server)
        return json.load(resp)


def _choice(label: str) -> list[dict]:
    return [
        {
            "from_name": CHOICES_NAME,
            "to_name": HEADER_NAME,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def test_local_server_binds_loopback_with_a_private_token(label_studio):
    home, url = label_studio["home"], label_studio["url"]
    assert url == f"http://127.0.0.1:{label_studio['port']}"
    creds_file = home / "credentials.json"
    assert oct(creds_file.stat().st_mode & 0o777) == "0o600"
    creds = credentials(home)
    assert find_label_studio(home) == (url, creds["token"])
    assert resolve_review_target(ReviewConfig(home=str(home))) == (url, creds["token"])
    me = _api(url, creds["token"], "/api/current-user/whoami")
    assert me["email"] == creds["email"]
    with pytest.raises(urllib.error.HTTPError) as bad:
        _api(url, "not-the-token-0000", "/api/projects/")
    assert bad.value.code == 401


def test_review_round_trip(label_studio):
    url, creds = label_studio["url"], credentials(label_studio["home"])
    spec = load_spec_file(DEMO_SPEC)
    client = ReviewClient(url, creds["token"], project_prefix="modalops-test")
    project = client.ensure_project(spec, "fusion-test")
    assert client.ensure_project(spec, "fusion-test") == project  # re-used, not duplicated

    camera_absent = {1: [s for s in spec.stream_names if spec.kind_of(s).name != "image"]}
    items = review_items(spec, n=4, absent=camera_absent)
    tasks = build_tasks(spec, items)
    assert client.import_tasks(project, tasks[:3]) == 3
    assert client.import_tasks(project, tasks) == 1  # only the new window
    assert client.import_tasks(project, tasks) == 0

    listed = _api(url, creds["token"], f"/api/tasks/?project={project}&page_size=100")
    by_key = {t["data"]["modalops_key"]: t["id"] for t in listed["tasks"]}
    assert sorted(by_key) == sorted(sample_key("sess-a", i) for i in range(4))

    # the model's answer is on the task the reviewer opens
    first = _api(url, creds["token"], f"/api/tasks/{by_key[sample_key('sess-a', 0)]}")
    (pred,) = first["predictions"]
    assert pred["model_version"] == "fusion-test:v7"
    assert pred["score"] == pytest.approx(0.4)
    assert pred["result"][0]["value"]["choices"] == [items.iloc[0]["label"]]

    # a scripted reviewer: agrees on window 0, corrects window 1, skips window 2
    classes = spec.labels.classes
    other = next(c for c in classes if c != items.iloc[1]["label"])
    before = datetime.now(UTC) - timedelta(seconds=5)
    for window, body in [
        (0, {"result": _choice(items.iloc[0]["label"])}),
        (1, {"result": _choice(other)}),
        (2, {"result": [], "was_cancelled": True}),
    ]:
        _api(
            url,
            creds["token"],
            f"/api/tasks/{by_key[sample_key('sess-a', window)]}/annotations/",
            body,
        )

    reviews = client.completed_reviews(project)
    assert list(reviews.columns) == REVIEW_COLUMNS
    assert sorted(reviews["window_index"]) == [0, 1]
    reviews = reviews.set_index("window_index")
    assert reviews.loc[0, "label"] == items.iloc[0]["label"]
    assert reviews.loc[0, "predicted_label"] == items.iloc[0]["label"]
    assert reviews.loc[1, "label"] == other
    assert reviews.loc[1, "predicted_label"] == items.iloc[1]["label"] != other
    assert reviews.loc[1, "predicted_score"] == pytest.approx(0.5)
    assert set(reviews["reviewer"]) == {creds["email"]}
    assert set(reviews["model_version"]) == {"fusion-test:v7"}
    assert set(reviews["session_id"]) == {"sess-a"}
    assert reviews.loc[1, "t_start"] == 2.0 and reviews.loc[1, "t_end"] == 4.0
    assert reviews.loc[1, "task_id"] == by_key[sample_key("sess-a", 1)]
    for stamp in reviews["reviewed_at"]:
        assert stamp.endswith("Z")
        assert before <= datetime.fromisoformat(stamp) <= datetime.now(UTC)


def test_changed_spec_is_refused_not_imported_into(label_studio):
    url, creds = label_studio["url"], credentials(label_studio["home"])
    spec = load_spec_file(DEMO_SPEC)
    client = ReviewClient(url, creds["token"], project_prefix="modalops-test")
    client.ensure_project(spec, "spec-change")
    changed = spec.to_dict()
    changed["labels"]["classes"] = [*spec.labels.classes, "unknown_event"]
    with pytest.raises(ReviewError, match="different labeling config"):
        client.ensure_project(DatasetSpec.model_validate(changed), "spec-change")


def test_the_review_tab_opens_on_the_reviewers_columns(label_studio):
    url, token = label_studio["url"], label_studio["token"]
    spec = load_spec_file(DEMO_SPEC)
    client = ReviewClient(url, token, project_prefix="modalops-view")
    project = client.ensure_project(spec, "fusion-test")
    client.import_tasks(project, build_tasks(spec, review_items(spec, n=2)))

    views = _api(url, token, f"/api/dm/views/?project={project}")
    assert [v["data"]["title"] for v in views] == [VIEW_TITLE]  # the first tab: the default
    hidden = views[0]["data"]["hiddenColumns"]
    server = column_ids(_api(url, token, f"/api/dm/columns/?project={project}")["columns"])
    shown = [c for c in server if c not in hidden["explore"]]
    assert shown == [c for c in server if c in VIEW_COLUMNS]
    assert set(VIEW_COLUMNS) <= set(server), "a column the reviewer reads is not in the tasks"
    for internal in ("modalops_key", "spec_digest", "metadata", "modalops_header"):
        assert f"tasks:data.{internal}" in hidden["explore"]
    for stream in spec.stream_names:
        assert f"tasks:data.{stream_key(stream)}" in hidden["explore"]
        assert f"tasks:data.{title_key(stream)}" in hidden["explore"]
    # kept, not duplicated, by the next import
    client.ensure_project(spec, "fusion-test")
    assert len(_api(url, token, f"/api/dm/views/?project={project}")) == 1


def test_a_project_made_with_an_older_look_is_brought_up_to_date(label_studio):
    url, token = label_studio["url"], label_studio["token"]
    spec = load_spec_file(DEMO_SPEC)
    client = ReviewClient(url, token, project_prefix="modalops-old")
    # what modalops made before audio had its waveform and series their whole window
    old = labeling_config(spec).replace('decoder="webaudio"', 'decoder="none"')
    old = old.replace(' overviewWidth="100%"', "")
    made = _api(
        url, token, "/api/projects/", {"title": client.project_title("m"), "label_config": old}
    )
    assert client.ensure_project(spec, "m") == made["id"]
    now = _api(url, token, f"/api/projects/{made['id']}")["label_config"]
    assert " ".join(now.split()) == " ".join(labeling_config(spec).split())


def test_review_start_prints_where_to_sign_in(label_studio):
    from typer.testing import CliRunner

    from modalops.review.cli import review_app

    home = label_studio["home"]
    out = CliRunner().invoke(review_app, ["start", "--home", str(home)])
    assert out.exit_code == 0, out.output
    assert "already running" in out.output
    assert f"Label Studio: {label_studio['url']}" in out.output
    assert f"sign in as: {label_studio['email']}" in out.output
    assert str(home / "credentials.json") in out.output
    assert label_studio["password"] not in out.output and label_studio["token"] not in out.output
    status = CliRunner().invoke(review_app, ["status", "--home", str(home)])
    assert status.exit_code == 0 and label_studio["email"] in status.output


def test_stop_closes_the_port(label_studio):
    """`modalops review stop`, as docs/review.md shows it."""
    from typer.testing import CliRunner

    from modalops.review.cli import review_app

    home = str(label_studio["home"])
    stopped = CliRunner().invoke(review_app, ["stop", "--home", home])
    assert stopped.exit_code == 0 and stopped.output.strip() == "stopped", stopped.output
    assert not port_is_open(label_studio["port"])
    assert find_label_studio(label_studio["home"]) is None
    again = CliRunner().invoke(review_app, ["stop", "--home", home])
    assert again.output.strip() == "no Label Studio was running"
    assert stop_label_studio(label_studio["home"]) is False
    # started again on the same home (its data kept, so ~7 s) for any later test of the session
    label_studio["service"] = start_label_studio(
        label_studio["home"], port=label_studio["port"], venv=label_studio["venv"]
    )
    assert find_label_studio(label_studio["home"]) is not None
