"""`modalops privacy subject|forget` on a tiny synthetic dataset with a real MLflow registry.

Six synthetic sessions of three subjects (person-0 owns rec-000 and rec-003), a dataset manifest
whose splits hold them, a registered model version trained on it (SQLite MLflow), a batch
prediction file, a review import file and label corrections: the listing must find each copy,
`forget` must delete only person-0's raw data, and the audit record must not identify them.
"""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from modalops.cli import app
from modalops.dataset.layout import read_sessions, read_table
from modalops.dataset.spec import parse_spec
from modalops.ingest.recordings import pseudonymise
from modalops.privacy import AUDIT_PREFIX, PrivacyError, find_subject, forget_subject
from modalops.shard.shards import DatasetManifest, SplitInfo
from modalops.store import LocalStore
from modalops.testing.recordings import synthetic_spec, write_recordings

SALT = "test-salt"
SUBJECT = "person-0"  # write_recordings: session i belongs to person-(i % 3)
MINE = ["rec-000", "rec-003"]


def _manifest(spec, version: str, sessions: dict[str, list[str]]) -> DatasetManifest:
    splits = {
        s: SplitInfo(shards=[], n_samples=0, sessions=ids, label_counts={})
        for s, ids in sessions.items()
    }
    return DatasetManifest(
        version=version,
        store_uri="unused",
        prefix=f"datasets/{version}",
        splits=splits,
        label_counts={},
        created_from={},
        spec=spec.to_dict(),
        spec_digest=spec.digest(),
        window_s=1.0,
    )


def _parquet(store, key: str, frame: pd.DataFrame) -> None:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    store.put_bytes(key, buf.getvalue())


@pytest.fixture
def recordings(tmp_path):
    """The raw data alone (no registry, no copies): for requests refused before any look-up."""
    raw, store = LocalStore(tmp_path / "raw"), LocalStore(tmp_path / "store")
    spec_dict = synthetic_spec()
    write_recordings(raw, spec_dict, sessions=6, duration_s=4.0, seed=1)
    return {
        "raw": raw,
        "store": store,
        "spec": parse_spec(spec_dict),
        "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "tmp": tmp_path,
    }


@pytest.fixture
def world(recordings, tmp_path):
    raw, store, spec = recordings["raw"], recordings["store"], recordings["spec"]
    mine_pseudo = pseudonymise(SUBJECT, SALT)
    # v-mine holds rec-003 in test; v-other holds none of person-0's sessions
    for version, sessions in {
        "v-mine": {"train": ["rec-001", "rec-002"], "val": ["rec-004"], "test": ["rec-003"]},
        "v-other": {"train": ["rec-001", "rec-002"], "val": ["rec-004"], "test": ["rec-005"]},
    }.items():
        store.put_text(
            f"datasets/{version}/manifest.json", _manifest(spec, version, sessions).to_json()
        )
    tracking_uri = recordings["tracking_uri"]
    client = MlflowClient(tracking_uri)
    client.create_registered_model("m")
    for dv in ("v-other", "v-mine", "v-other"):
        client.create_model_version("m", source=str(tmp_path), tags={"dataset_version": dv})
    _parquet(
        store,
        "runs/r1/inference/predictions.parquet",
        pd.DataFrame(
            {
                "session_id": ["rec-003", "rec-001", "rec-003"],
                "subject": [mine_pseudo, "x", mine_pseudo],
            }
        ),
    )
    _parquet(
        store,
        "runs/r2/inference/predictions.parquet",
        pd.DataFrame({"session_id": ["rec-002"], "subject": ["y"]}),
    )
    tasks = [
        {"data": {"session_id": "rec-000", "subject": mine_pseudo, "modalops_key": "rec-000_w1"}},
        {"data": {"session_id": "rec-004", "subject": "z", "modalops_key": "rec-004_w1"}},
    ]
    store.put_text("runs/r1/review/import.json", json.dumps(tasks))
    _parquet(
        raw,
        "corrections/v000001.parquet",
        pd.DataFrame(
            {
                "session_id": ["rec-000", "rec-001", "rec-003"],
                "window_index": [1, 2, 3],
                "label": ["idle"] * 3,
            }
        ),
    )
    return {**recordings, "pseudonym": mine_pseudo}


def _find(world, subject=SUBJECT):
    return find_subject(
        world["raw"],
        world["store"],
        world["spec"],
        subject,
        salt=SALT,
        tracking_uri=world["tracking_uri"],
    )


def test_subject_listing_finds_every_copy(world):
    report = _find(world)
    assert report.pseudonym == world["pseudonym"] != SUBJECT
    assert report.sessions == MINE
    assert report.dataset_versions == ["v-mine"]
    assert report.model_versions == [{"name": "m", "version": "2", "dataset_version": "v-mine"}]
    assert report.predictions == [
        {"uri": world["store"].uri("runs/r1/inference/predictions.parquet"), "rows": 2}
    ]
    assert [(r["source"], r["tasks"]) for r in report.review_tasks] == [("import-json", 1)]
    assert report.correction_rows == 2
    assert report.raw_objects and all(
        k.startswith(("sessions/rec-000/", "sessions/rec-003/")) for k in report.raw_objects
    )


def test_a_subject_with_no_sessions_has_an_empty_report(world):
    report = _find(world, "nobody")
    assert report.sessions == [] and report.dataset_versions == [] and report.model_versions == []
    assert report.predictions == [] and report.review_tasks == [] and report.correction_rows == 0


def test_a_spec_without_a_subject_column_is_refused(world):
    spec = parse_spec({**synthetic_spec(), "metadata": {"columns": ["plant"]}})
    with pytest.raises(PrivacyError, match="declares no metadata.subject"):
        find_subject(world["raw"], world["store"], spec, SUBJECT, salt=SALT, tracking_uri=None)


def test_forget_deletes_only_the_subject_and_the_audit_names_nobody(world):
    raw, spec = world["raw"], world["spec"]
    before = {k for k in raw.list("sessions")}
    report = _find(world)
    record = forget_subject(raw, spec, report, actor="dpo@example.org")

    left = set(raw.list("sessions"))
    assert not any(k.startswith(("sessions/rec-000/", "sessions/rec-003/")) for k in left)
    assert left == {
        k for k in before if not k.startswith(("sessions/rec-000/", "sessions/rec-003/"))
    }
    assert left, "other subjects' sessions must stay"
    table = read_sessions(raw, spec)
    assert sorted(table["session_id"]) == ["rec-001", "rec-002", "rec-004", "rec-005"]
    assert SUBJECT not in set(table["operator"])
    corrections = pd.read_parquet(io.BytesIO(raw.get_bytes("corrections/v000001.parquet")))
    assert list(corrections["session_id"]) == ["rec-001"]

    assert record["deleted"] == {
        "sessions": 2,
        "raw_objects": len(report.raw_objects),
        "sessions_table_rows": 2,
        "label_correction_rows": 2,
    }
    assert record["to_rebuild"] == {"dataset_versions": ["v-mine"], "model_versions": ["m/2"]}
    assert record["by"] == "dpo@example.org"
    keys = raw.list(AUDIT_PREFIX)
    assert keys == [record["audit_key"]] and keys[0].startswith("privacy/audit/")
    text = raw.get_text(keys[0])
    for personal in (SUBJECT, world["pseudonym"], *MINE):
        assert personal not in text, personal
    assert json.loads(text)["still_holding_copies"]["review_tasks"] == 1
    # afterwards the subject is gone from the raw data, so the listing finds no sessions
    assert _find(world).sessions == []


def _cli_args(world) -> list[str]:
    return [
        "--set", f"ingest.raw_uri={world['tmp'] / 'raw'}",
        "--set", f"store.uri={world['tmp'] / 'store'}",
        "--set", f"registry.tracking_uri={world['tracking_uri']}",
        "--set", f"ingest.subject_salt={SALT}",
        "--set", f"review.home={world['tmp'] / 'no-label-studio'}",
    ]  # fmt: skip


def test_cli_subject_table_and_json(world):
    runner = CliRunner()
    out = runner.invoke(app, ["privacy", "subject", SUBJECT, *_cli_args(world), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["pseudonym"] == world["pseudonym"] and doc["dataset_versions"] == ["v-mine"]
    assert doc["model_versions"][0]["version"] == "2"
    table = runner.invoke(app, ["privacy", "subject", SUBJECT, *_cli_args(world)])
    assert table.exit_code == 0, table.output
    assert "v-mine" in table.stdout and "m/2" in table.stdout and world["pseudonym"] in table.stdout


def test_cli_forget_refuses_without_yes_then_deletes(world):
    runner = CliRunner()
    dry = runner.invoke(app, ["privacy", "forget", SUBJECT, *_cli_args(world)])
    assert dry.exit_code == 1 and "refusing without --yes" in dry.output
    assert world["raw"].list("sessions/rec-000") and not world["raw"].list(AUDIT_PREFIX)
    done = runner.invoke(app, ["privacy", "forget", SUBJECT, *_cli_args(world), "--yes"])
    assert done.exit_code == 0, done.output
    assert "rebuild dataset_versions: v-mine" in done.stdout
    assert not world["raw"].list("sessions/rec-000") and world["raw"].list("sessions/rec-001")
    assert len(world["raw"].list(AUDIT_PREFIX)) == 1


# ---- ids that would reach past one session (issue 23) -----------------------------------------


def _add_session(world, **values) -> int:
    """Append a sessions-table row (a copy of the first, with `values`); its line number."""
    raw, key = world["raw"], world["spec"].sessions.table
    table = read_table(raw.get_bytes(key), raw.uri(key), dtype=str, keep_default_na=False)
    row = {**table.iloc[0].to_dict(), **values}
    raw.put_text(key, pd.concat([table, pd.DataFrame([row])]).to_csv(index=False))
    return len(table) + 2


def test_forget_refuses_a_session_id_that_is_not_a_plain_name(recordings):
    """'/' once made the session's folder the folder of every session: forget deleted them all."""
    raw = recordings["raw"]
    table = raw.uri("sessions.csv")
    unsafe = ["/", "..", "rec-000/..", "", "../raw"]
    lines = [_add_session(recordings, session_id=sid, operator=f"intruder{sid}") for sid in unsafe]
    before = {k: raw.get_bytes(k) for k in raw.list("")}
    for sid, line in zip(unsafe, lines, strict=True):
        with pytest.raises(PrivacyError) as err:
            _find(recordings, f"intruder{sid}")
        assert str(err.value).startswith(f"{table} (line {line}): session id {sid!r} is not a safe")
    out = CliRunner().invoke(
        app, ["privacy", "forget", "intruder/", *_cli_args(recordings), "--yes"]
    )
    assert out.exit_code == 2, out.output
    assert f"{table} (line {lines[0]}): session id '/' is not a safe session id" in out.output
    assert {k: raw.get_bytes(k) for k in raw.list("")} == before  # nothing deleted or written


def test_a_subject_id_that_is_not_exactly_an_id_is_refused(tmp_path):
    """Refused before anything is read: an empty raw root will do."""
    raw, spec = LocalStore(tmp_path / "raw"), parse_spec(synthetic_spec())
    for subject in ["", " ", " person-0", "person-0\n"]:
        with pytest.raises(PrivacyError, match=r"expected the subject's id exactly"):
            find_subject(raw, raw, spec, subject, salt=SALT, tracking_uri=None)


def test_an_empty_subject_cell_is_nobodys(recordings):
    """An empty cell reads as missing; it must not match the subject id 'nan'."""
    _add_session(recordings, session_id="rec-009", operator="")
    assert _find(recordings, "nan").sessions == []
    assert _find(recordings).sessions == MINE


def test_an_unreadable_dataset_manifest_stops_the_listing_naming_it(tmp_path):
    """A manifest that cannot be read may hold the subject's sessions: an error naming it,
    never a listing (or a deletion) that quietly leaves that copy out."""
    from modalops.privacy import dataset_versions_with

    store = LocalStore(tmp_path / "store")
    store.put_text("datasets/v-broken/manifest.json", "{not json")
    with pytest.raises(PrivacyError, match=r"v-broken/manifest\.json: cannot read"):
        dataset_versions_with(store, {"s1"})
