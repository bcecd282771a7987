"""Reviewed label corrections: versioned, conflicts kept apart, applied by ingest and align."""

from __future__ import annotations

import pandas as pd
import pytest

from modalops.align import align_dataset
from modalops.config.align import AlignConfig
from modalops.config.data import IngestConfig
from modalops.dataset import layout
from modalops.dataset.corrections import (
    apply_corrections,
    read_conflicts,
    read_corrections,
)
from modalops.dataset.spec import parse_spec
from modalops.infer.feedback import record_feedback
from modalops.ingest import ingest_recordings
from modalops.store import open_store
from modalops.testing.recordings import synthetic_spec, write_recordings


def _review(sid, t0, t1, label, ann, reviewer="ana@example.org", at="2026-12-01T10:00:00+00:00"):
    return {
        "task_id": f"t{ann}", "annotation_id": str(ann), "session_id": sid, "window_index": 0,
        "t_start": t0, "t_end": t1, "label": label, "reviewer": reviewer, "reviewed_at": at,
        "predicted_label": "off", "predicted_score": 0.4, "model_name": "m", "model_version": "1",
    }  # fmt: skip


def test_apply_corrections_lays_reviews_over_intervals():
    labels = pd.DataFrame({"start_s": [0.0, 10.0], "end_s": [10.0, 20.0], "label": ["a", "b"]})
    corr = pd.DataFrame({"t_start": [8.0], "t_end": [12.0], "label": ["c"]})
    out = apply_corrections(labels, corr)
    assert list(map(tuple, out.to_numpy())) == [
        (0.0, 8.0, "a"), (8.0, 12.0, "c"), (12.0, 20.0, "b")
    ]  # fmt: skip
    # a session with no label table is labelled where it was reviewed, nowhere else
    only = apply_corrections(None, corr)
    assert list(map(tuple, only.to_numpy())) == [(8.0, 12.0, "c")]
    # session-level labels (all time) are cut around the review too
    whole = pd.DataFrame({"start_s": [float("-inf")], "end_s": [float("inf")], "label": ["a"]})
    assert list(apply_corrections(whole, corr)["label"]) == ["a", "c", "a"]


@pytest.fixture
def recorded(tmp_path):
    raw = open_store(str(tmp_path / "raw"))
    spec_dict = synthetic_spec()
    write_recordings(raw, spec_dict, sessions=3, duration_s=12.0, seed=1)
    return raw, parse_spec(spec_dict, "synthetic")


def test_reviews_become_versions_and_conflicts_are_not_applied(recorded):
    raw, spec = recorded
    sid = layout.read_sessions(raw, spec)[spec.sessions.id_column].astype(str).iloc[0]
    truth = layout.read_labels(raw, spec, sid)
    t0 = float(truth["start_s"].iloc[0])
    existing = str(truth["label"].iloc[0])
    other = next(c for c in spec.labels.classes if c != existing)
    # the label table says `existing` here; a review saying `other` is a conflict
    reviews = pd.DataFrame([
        _review(sid, t0, t0 + 1.0, existing, 1),
        _review(sid, t0 + 1.0, t0 + 2.0, other, 2, reviewer="bo@example.org"),
    ])  # fmt: skip
    # make the second window agree with nothing: cut it out of the label table's coverage
    got = record_feedback(raw, spec, reviews, min_overlap=0.5)
    assert got.version == 1
    assert len(got.written) + len(got.conflicts) == 2
    conflict = got.conflicts.iloc[0]
    assert conflict["label"] == other and conflict["existing_label"] in spec.labels.classes
    assert "label table" in conflict["existing_source"]
    assert bool(got.written.iloc[0]["agrees_with_existing"]) is True
    assert got.written.iloc[0]["reviewer"] == "ana@example.org"
    assert got.written.iloc[0]["predicted_label"] == "off"
    # pulling the same reviews again writes nothing
    again = record_feedback(raw, spec, reviews, min_overlap=0.5)
    assert again.version is None and again.already_recorded == 2
    # a later review of an already reviewed window with another class is a conflict too
    later = pd.DataFrame([_review(sid, t0, t0 + 1.0, other, 3, reviewer="cy@example.org")])
    third = record_feedback(raw, spec, later, min_overlap=0.5)
    assert third.version == 2 and len(third.conflicts) == 1
    assert third.conflicts.iloc[0]["existing_source"].startswith("review v1 by ana")
    assert len(read_corrections(raw, spec)) == 1
    assert len(read_conflicts(raw, spec)) == 2
    # unknown classes are refused by name
    with pytest.raises(ValueError, match="not classes"):
        record_feedback(raw, spec, pd.DataFrame([_review(sid, 0, 1, "nope", 9)]), 0.5)


def test_a_new_session_is_labelled_by_its_reviews(recorded):
    raw, spec = recorded
    ids = layout.read_sessions(raw, spec)[spec.sessions.id_column].astype(str).tolist()
    sid = ids[-1]
    truth = layout.read_labels(raw, spec, sid)
    raw.delete(layout.session_key(spec, sid, spec.labels.path))  # an unlabelled recording
    ingest_cfg, align_cfg = IngestConfig(raw_uri=raw.uri()), AlignConfig(mode="metadata")
    before = ingest_recordings(raw, spec, ingest_cfg)
    row = before.catalog[(before.catalog.session_id == sid) & (before.catalog.stream == "labels")]
    # training cannot use it yet; it is not bad data either: absent, with no quarantine row
    assert row["status"].iloc[0] == "absent" and "not labelled yet" in row["reason"].iloc[0]
    assert not (before.quarantine["session_id"] == sid).any()
    skipped = align_dataset(raw, spec, before.catalog, AlignConfig(mode="metadata"), raw, "o0")
    assert skipped.summary["sessions_not_labelled"] == 1
    assert sid not in set(skipped.quarantine["session_id"])
    # inference needs no labels: the session is catalogued with its labels absent
    lenient = ingest_recordings(raw, spec, ingest_cfg, sessions=[sid], labels_required=False)
    assert set(lenient.catalog["session_id"]) == {sid}
    assert lenient.catalog.set_index("stream").loc["labels", "status"] == "absent"
    assert lenient.quarantine.empty

    w = align_cfg.window_s
    t0 = float(truth["start_s"].iloc[0])
    reviews = pd.DataFrame(
        [_review(sid, t0 + k * w, t0 + (k + 1) * w, str(truth["label"].iloc[0]), 10 + k)
         for k in range(3)]
    )  # fmt: skip
    got = record_feedback(raw, spec, reviews, min_overlap=align_cfg.min_label_overlap)
    assert len(got.written) == 3 and bool(got.written["agrees_with_existing"].any()) is False

    after = ingest_recordings(raw, spec, ingest_cfg)
    row = after.catalog[(after.catalog.session_id == sid) & (after.catalog.stream == "labels")]
    assert row["status"].iloc[0] == "ok" and int(row["n_items"].iloc[0]) == 3
    aligned = align_dataset(raw, spec, after.catalog, align_cfg, raw, "out", after.quarantine)
    assert aligned.summary["reviewed_labels"] >= 2
    assert aligned.summary["corrections_on_record"] == 3
