"""Tests of the ingest stage: catalog contents, hashes, and quarantine of every unreadable kind."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from modalops.config.data import IngestConfig
from modalops.dataset.errors import RawDataError
from modalops.ingest import catalog_columns, ingest_recordings, pseudonymise, session_items
from modalops.quarantine import QUARANTINE_COLUMNS
from modalops.store import LocalStore
from modalops_demo import names as demo
from modalops_demo.generate import CORRUPTION_KINDS, DemoDataConfig, generate_demo_data

TINY = DemoDataConfig(sessions=3, duration_s=12.0)
SPEC = demo.demo_spec()
STREAMS = session_items(SPEC)
CATALOG_COLUMNS = catalog_columns(SPEC)


def ingest(store, cfg=None):
    return ingest_recordings(store, SPEC, cfg or IngestConfig())


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("clean"))
    generate_demo_data(store, TINY)
    return store


def test_clean_data_is_fully_catalogued(clean):
    result = ingest(clean)
    cat = result.catalog
    assert list(cat.columns) == list(CATALOG_COLUMNS)
    assert len(result.quarantine) == 0
    assert len(cat) == 3 * len(STREAMS)
    assert (cat["status"] == "ok").all() and cat["reason"].isna().all()
    assert cat["content_hash"].str.fullmatch(r"[0-9a-f]{64}").all()
    by = cat.set_index(["session_id", "stream"])
    cam = by.loc[("sess-0000", "camera")]
    assert cam["n_items"] == 48 and cam["n_bad_items"] == 0 and cam["kind"] == "image"
    assert cam["width"] == 64 and cam["height"] == 64 and cam["n_channels"] == 3
    assert cam["sample_rate"] == pytest.approx(4.0, rel=0.1)
    audio = by.loc[("sess-0000", "audio")]
    assert audio["sample_rate"] == 16000 and audio["duration_s"] > 12.0
    assert audio["t_last"] - audio["t_first"] == pytest.approx(audio["duration_s"], abs=1e-3)
    vib = by.loc[("sess-0000", "vibration")]
    assert vib["sample_rate"] == pytest.approx(100.0, rel=0.02)
    assert vib["nan_fraction"] == 0.0 and vib["flat_channels"] == 0 and vib["n_channels"] == 3
    labels = by.loc[("sess-0000", "labels")]
    assert labels["t_first"] == 0.0 and labels["t_last"] == 12.0
    # Subjects are pseudonymised, never carried raw.
    assert cat["subject"].str.fullmatch(r"subj-[0-9a-f]{12}").all()
    assert not cat.astype(str).apply(lambda c: c.str.contains("op-0")).any().any()


def test_hashes_are_stable_and_track_content(clean, tmp_path):
    first = ingest(clean).catalog
    again = ingest(clean).catalog
    assert first["content_hash"].tolist() == again["content_hash"].tolist()
    # Same seed written elsewhere: same hashes (hashes depend on bytes, not paths).
    copy = LocalStore(tmp_path / "copy")
    generate_demo_data(copy, TINY)
    assert ingest(copy).catalog["content_hash"].tolist() == (first["content_hash"].tolist())
    # Changing one frame changes the camera hash of that session only.
    key = "sessions/sess-0001/camera/f000003.jpg"
    copy.put_bytes(key, clean.get_bytes("sessions/sess-0001/camera/f000004.jpg"))
    changed = ingest(copy).catalog
    diff = changed.loc[changed["content_hash"] != first["content_hash"], ["session_id", "stream"]]
    assert diff.values.tolist() == [["sess-0001", "camera"]]


def test_pseudonymise_is_stable_and_salted():
    assert pseudonymise("op-001", "a") == pseudonymise("op-001", "a")
    assert pseudonymise("op-001", "a") != pseudonymise("op-001", "b")
    assert pseudonymise("op-001", "a") != pseudonymise("op-002", "a")
    assert pseudonymise("op-001", "a").startswith("subj-")


def test_max_sessions(clean):
    cat = ingest(clean, IngestConfig(max_sessions=2)).catalog
    assert sorted(cat["session_id"].unique()) == ["sess-0000", "sess-0001"]


def test_missing_session_directory_is_quarantined_whole(clean, tmp_path):
    shutil.copytree(clean.root, tmp_path / "raw")
    store = LocalStore(tmp_path / "raw")
    shutil.rmtree(tmp_path / "raw" / "sessions" / "sess-0002")
    result = ingest(store)
    lost = result.catalog[result.catalog["session_id"] == "sess-0002"]
    assert len(lost) == len(STREAMS) and (lost["status"] == "quarantined").all()
    assert lost["reason"].str.contains("session folder is missing").all()
    q = result.quarantine
    assert q["session_id"].tolist() == ["sess-0002"] and q["stream"].isna().all()
    others = result.catalog[result.catalog["session_id"] != "sess-0002"]
    assert (others["status"] == "ok").all() and len(others) == 2 * len(STREAMS)


def test_unreadable_manifest_raises_naming_the_file(tmp_path):
    store = LocalStore(tmp_path)
    store.put_text(demo.SESSIONS_MANIFEST, "session_id,site\ns1,a\n")
    with pytest.raises(RawDataError, match="sessions.csv: missing columns"):
        ingest(store)


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("bad"))
    cfg = DemoDataConfig(sessions=8, duration_s=12.0, corrupt=dict.fromkeys(CORRUPTION_KINDS, 0.1))
    summary = generate_demo_data(store, cfg)
    return store, summary, ingest(store)


EXPECTED_REASON = {
    "truncated_wav": "truncated WAV",
    "sample_rate": "sample rate 8000 Hz, the clock file says 16000 Hz",
    "shuffled_timestamps": "timestamps out of order",
    "missing_modality": "file is missing",
    "unknown_label": "unknown labels",
}
FILE_MODALITY = {
    demo.AUDIO_FILE: "audio",
    demo.VIBRATION_FILE: "vibration",
    demo.NOTES_FILE: "notes",
    demo.LABELS_FILE: "labels",
    demo.FRAMES_INDEX: "camera",
}


def _modality_of(key: str) -> str:
    for name, modality in FILE_MODALITY.items():
        if key.endswith(name):
            return modality
    raise AssertionError(key)


@pytest.mark.parametrize("kind", sorted(EXPECTED_REASON))
def test_each_unreadable_kind_is_quarantined_with_its_reason(corrupted, kind):
    store, summary, result = corrupted
    records = [r for r in summary.corrupted if r.kind == kind]
    assert records
    for r in records:
        modality = _modality_of(r.file)
        row = result.catalog.set_index(["session_id", "stream"]).loc[(r.session_id, modality)]
        assert row["status"] == "quarantined"
        assert EXPECTED_REASON[kind] in row["reason"]
        assert store.uri(r.file) in row["reason"]  # the reason names the file
        q = result.quarantine
        hit = q[(q["session_id"] == r.session_id) & (q["stream"] == modality)]
        assert len(hit) == 1 and hit["uri"].iloc[0] == store.uri(r.file)
        assert hit["stage"].iloc[0] == "ingest"


def test_corrupt_frames_get_one_row_each_and_the_stream_stays_ok(corrupted):
    store, summary, result = corrupted
    bad = [r for r in summary.corrupted if r.kind == "jpeg"]
    q = result.quarantine
    frame_rows = q[q["uri"].str.endswith(".jpg")]
    # Frames of a session whose frames index is unreadable are never opened.
    unindexed = set(
        result.catalog.query("stream == 'camera' and status == 'quarantined'")["session_id"]
    )
    expected = {store.uri(r.file) for r in bad if r.session_id not in unindexed}
    assert set(frame_rows["uri"]) == expected
    assert frame_rows["reason"].str.contains(r"\.jpg: not (?:a decodable JPEG/PNG|an image)").all()
    cams = result.catalog.query("stream == 'camera' and status == 'ok'").set_index("session_id")
    for sid, n in cams["n_bad_items"].items():
        assert n == sum(1 for r in bad if r.session_id == sid)


def test_telemetry_defects_are_recorded_not_quarantined(corrupted):
    store, summary, result = corrupted
    cat = result.catalog.set_index(["session_id", "stream"])
    (nan,) = [r for r in summary.corrupted if r.kind == "nan_burst"]
    row = cat.loc[(nan.session_id, "vibration")]
    assert row["status"] == "ok" and 0 < row["nan_fraction"] < 0.5
    (flat,) = [r for r in summary.corrupted if r.kind == "flatline"]
    row = cat.loc[(flat.session_id, "vibration")]
    assert row["status"] == "ok" and row["flat_channels"] == 1


def test_rest_of_the_dataset_is_still_catalogued(corrupted):
    store, summary, result = corrupted
    cat = result.catalog
    assert len(cat) == 8 * len(STREAMS)
    assert list(result.quarantine.columns) == list(QUARANTINE_COLUMNS)
    hit = {
        (r.session_id, _modality_of(r.file)) for r in summary.corrupted if r.kind in EXPECTED_REASON
    }
    quarantined = set(
        map(tuple, cat.loc[cat["status"] == "quarantined", ["session_id", "stream"]].values)
    )
    assert quarantined == hit
    ok = cat[cat["status"] == "ok"]
    assert ok["content_hash"].notna().all() and (ok["n_bytes"] > 0).all()
    assert np.isfinite(ok.loc[ok["stream"] == "audio", "duration_s"].astype(float)).all()


def test_ingest_reads_an_s3_prefix_like_a_directory(clean, s3_bucket):
    """Over HTTP against the moto server (`s3_bucket`), as every other S3 test runs."""
    from modalops.store import S3Store

    s3 = S3Store(f"{s3_bucket}/demo")
    s3.put_dir("", clean.root)
    remote = ingest(s3)
    local = ingest(clean)
    assert len(remote.quarantine) == 0
    assert remote.catalog["uri"].str.startswith(f"{s3_bucket}/demo/sessions/").all()
    assert remote.catalog["content_hash"].tolist() == local.catalog["content_hash"].tolist()
    assert remote.catalog["key"].tolist() == local.catalog["key"].tolist()


UNSAFE_IDS = ["/", "", "..", "../sess-0000", "sess-0000/camera", " sess-0001", "a..b", "x" * 129]


def test_unsafe_session_ids_are_quarantined_and_the_rest_is_ingested(clean, tmp_path):
    """A session id names a folder: one that is not a plain name ('/' named the parent of every
    session) is quarantined with the table line and the id, never read; nothing else changes."""
    shutil.copytree(clean.root, tmp_path / "raw")
    store = LocalStore(tmp_path / "raw")
    table_path = tmp_path / "raw" / demo.SESSIONS_MANIFEST
    table = pd.read_csv(table_path, dtype=str, keep_default_na=False)
    extra = [{**table.iloc[0].to_dict(), "session_id": sid} for sid in UNSAFE_IDS]
    pd.concat([table, pd.DataFrame(extra)]).to_csv(table_path, index=False)
    (tmp_path / "raw" / "sessions" / "not listed!").mkdir()
    (tmp_path / "raw" / "sessions" / "not listed!" / "notes.jsonl").write_text("{}")

    result = ingest(store)
    cat, q = result.catalog, result.quarantine
    table_uri = store.uri(demo.SESSIONS_MANIFEST)
    for i, sid in enumerate(UNSAFE_IDS):
        reason = f"{table_uri} (line {len(table) + 2 + i}): session id {sid!r} is not a safe"
        rows = cat[cat["session_id"] == sid]
        assert len(rows) == len(STREAMS) and (rows["status"] == "quarantined").all(), sid
        assert rows["reason"].str.startswith(reason).all(), rows["reason"].iloc[0]
        (record,) = q[q["session_id"] == sid].to_dict("records")
        assert record["reason"].startswith(reason) and pd.isna(record["stream"])
    (unlisted,) = q[q["session_id"] == "not listed!"].to_dict("records")
    assert unlisted["uri"] == store.uri("sessions/not listed!")
    assert "session id 'not listed!' is not a safe session id" in unlisted["reason"]
    assert len(q) == len(UNSAFE_IDS) + 1
    good = cat[cat["session_id"].isin(table["session_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        good.drop(columns="uri"), ingest(clean).catalog.drop(columns="uri")
    )
