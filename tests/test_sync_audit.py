"""Issue 25, part 3: the sync report card, on tiny demo data through the real align code."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from modalops.align import align_dataset
from modalops.align.audit import TIERS, render_sync_report, worst_first
from modalops.cli import app
from modalops.config.align import AlignConfig
from modalops.config.data import IngestConfig
from modalops.dataset.spec import load_spec_file
from modalops.ingest import ingest_recordings
from modalops.store import LocalStore
from modalops_demo.generate import DemoDataConfig, generate_demo_data

MISSING = "sess-0001"  # one stream file removed: that stream is unusable
UNREADABLE = "sess-0002"  # clock file corrupted: the session cannot be synced


@pytest.fixture(scope="module")
def demo_raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("sync") / "raw"
    raw = LocalStore(root)
    generate_demo_data(raw, DemoDataConfig(sessions=4, duration_s=30.0, seed=3))
    (root / "sessions" / MISSING / "vibration.parquet").unlink()
    (root / "sessions" / UNREADABLE / "clock.json").write_text("{not json")
    return root


@pytest.fixture(scope="module")
def audited(demo_raw, tmp_path_factory):
    raw = LocalStore(demo_raw)
    spec = load_spec_file(demo_raw / "dataset.yaml")
    ingested = ingest_recordings(raw, spec, IngestConfig(raw_uri=str(demo_raw)))
    out = LocalStore(tmp_path_factory.mktemp("sync-store"))
    result = align_dataset(
        raw, spec, ingested.catalog, AlignConfig(), out, "r", ingested.quarantine
    )
    return result, render_sync_report(result.report, result.traces, result.quarantine)


def test_page_is_self_contained(audited):
    _, page = audited
    assert page.startswith("<!doctype html>") and "<svg" in page
    for banned in ("http://", "https://", 'src="http', "<script", "<link", "@import"):
        assert banned not in page


def test_page_lists_every_session_and_stream_worst_first(audited):
    result, page = audited
    rows = result.report[result.report["method"].fillna("") != "reference"]
    assert page.count("<tr class=") == len(rows)
    # the session column is filled on a session's first row only: its order is the page's order
    order = re.findall(r'<td class="n">\d+</td><td>(sess-\d+)</td>', page)
    assert sorted(order) == sorted(result.report["session_id"].unique())
    assert order[:2] == [UNREADABLE, MISSING]
    # the rest by their lowest confidence (no residual breaks a tie here)
    good = [sid for sid in order if sid not in (UNREADABLE, MISSING)]
    conf = rows.groupby("session_id")["confidence"].min()
    assert [conf[s] for s in good] == sorted(conf[s] for s in good)
    for stream in rows["stream"].dropna().unique():
        assert re.search(rf"<td>{stream}</td>", page)
    tiers = [TIERS.index(v) for v in worst_first(result.report)["verdict"]]
    first = worst_first(result.report).groupby("session_id", sort=False).head(1)
    assert [TIERS.index(v) for v in first["verdict"]] == sorted(
        TIERS.index(v) for v in first["verdict"]
    )
    assert tiers[0] == TIERS.index("not synced")


def test_broken_sessions_are_listed_with_their_reason(audited):
    result, page = audited
    rep = result.report[result.report["session_id"] == UNREADABLE]
    assert (rep["session_status"] != "ok").all()
    reason = str(rep["session_reason"].iloc[0])
    assert "clock" in reason and reason in page.replace("&#x27;", "'")
    missing = result.report[
        (result.report["session_id"] == MISSING) & (result.report["stream"] == "vibration")
    ]
    assert not missing["usable"].iloc[0]
    assert "stream missing" in str(missing["fallback_reason"].iloc[0])
    assert "stream unusable" in page and "stream missing" in page


def test_residuals_and_intervals_against_truth(audited):
    result, page = audited
    est = result.report[(result.report["method"] == "estimate") & result.report["usable"]]
    assert len(est) >= 3
    by_key = {(t.session_id, t.stream): t for t in result.traces}
    for row in est.itertuples():
        assert format(row.residual_offset_s, "+.3f") in page
        iv = by_key[(row.session_id, row.stream)].interval
        # measured, finite, and on this demo wide enough to hold the truth
        assert np.isfinite(iv.offset_s) and 0 < iv.offset_s < 0.5, iv
        assert abs(row.residual_offset_s) <= iv.offset_s, (row, iv)
        assert format(row.offset_s, "+.3f") + " ± " + format(iv.offset_s, "+.3f") in page


def test_cli_writes_the_page(demo_raw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "card.html"
    res = CliRunner().invoke(
        app, ["sync", "audit", "--set", f"ingest.raw_uri={demo_raw}", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert "Sync report card" in page and UNREADABLE in page and "<script" not in page
    # the CLI lists ingest's quarantine too: the clock file's own problem, not only its effect
    assert "ingest" in page and "clock.json" in page
    assert "4 sessions" in res.output
