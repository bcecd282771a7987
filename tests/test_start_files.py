"""Per-device start files (streams.<name>.clock.start_file): spec, draft, check and the clock."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from modalops.cli import app
from modalops.dataset.layout import load_session
from modalops.dataset.spec import SpecError, parse_spec
from modalops.kinds.audio.wav import encode_wav
from modalops.store import LocalStore

runner = CliRunner()


def _recordings(root, starts: dict[str, object] | None = None) -> None:
    """Two sessions of a 50 Hz IMU and a microphone that wrote its start time in mic.json."""
    rng = np.random.default_rng(0)
    for i, sid in enumerate(["a", "b"]):
        folder = root / "rec" / sid
        folder.mkdir(parents=True)
        t = np.arange(0, 6.0, 0.02)
        pd.DataFrame({"t": t, "x": rng.normal(size=t.size)}).to_csv(folder / "imu.csv", index=False)
        (folder / "mic.wav").write_bytes(encode_wav(rng.normal(0, 0.1, 8000 * 6), 8000))
        pd.DataFrame(
            {"start_s": [0.0, 3.0], "end_s": [3.0, 6.0], "label": ["rest", "lift"]}
        ).to_csv(folder / "labels.csv", index=False)
        value = (starts or {}).get(sid, 1.25 + i)
        if value is not None:
            (folder / "mic.json").write_text(json.dumps({"device": "mic", "start_time_s": value}))
    pd.DataFrame({"session_id": ["a", "b"]}).to_csv(root / "sessions.csv", index=False)


def _spec(**clock) -> dict:
    return {
        "name": "start-files",
        "sessions": {"table": "sessions.csv", "folder": "rec/{session_id}"},
        "reference": "imu",
        "streams": {
            "imu": {"kind": "timeseries", "path": "imu.csv",
                    "params": {"channels": ["x"], "sample_rate": 50.0}},
            "mic": {"kind": "audio", "path": "mic.wav", "params": {"sample_rate": 8000},
                    "clock": {"start_file": "mic.json", "start_field": "start_time_s", **clock}},
        },
        "labels": {"classes": ["rest", "lift"], "source": "intervals", "path": "labels.csv"},
    }  # fmt: skip


def test_spec_refuses_a_start_file_outside_the_session_folder():
    doc = _spec()
    doc["streams"]["mic"]["clock"]["start_file"] = "../mic.json"
    with pytest.raises(SpecError, match="start_file"):
        parse_spec(doc)


def test_start_file_sets_the_starting_clock(tmp_path):
    _recordings(tmp_path)
    spec = parse_spec(_spec())
    store = LocalStore(tmp_path)
    session = load_session(store, spec, "b", {})
    # the mic started 2.25 s into the reference's clock: its clock reads t_ref - 2.25
    assert session.clocks["mic"].offset_s == pytest.approx(-2.25)
    assert session.clocks["imu"].offset_s == 0.0


def test_start_files_on_both_streams_give_the_difference(tmp_path):
    _recordings(tmp_path)
    for sid in ("a", "b"):
        (tmp_path / "rec" / sid / "imu.json").write_text(json.dumps({"start_time_s": 100.0}))
        (tmp_path / "rec" / sid / "mic.json").write_text(json.dumps({"start_time_s": 101.5}))
    doc = _spec()
    doc["streams"]["imu"]["clock"] = {"start_file": "imu.json"}
    session = load_session(LocalStore(tmp_path), parse_spec(doc), "a", {})
    assert session.clocks["mic"].offset_s == pytest.approx(-1.5)


def test_dataset_check_names_a_missing_and_a_malformed_start_file(tmp_path):
    _recordings(tmp_path, starts={"a": None, "b": "soon"})
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump(_spec()))
    result = runner.invoke(app, ["dataset", "check", str(tmp_path)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert str(tmp_path / "rec" / "a" / "mic.json") in out
    b = str(tmp_path / "rec" / "b" / "mic.json")
    assert b in out and "'start_time_s' is 'soon'; expected seconds" in out
    assert "2 problems" in out


def test_dataset_check_names_a_start_file_without_the_field(tmp_path):
    _recordings(tmp_path)
    (tmp_path / "rec" / "a" / "mic.json").write_text(json.dumps({"started": 3}))
    (tmp_path / "rec" / "b" / "mic.json").write_text("{not json")
    (tmp_path / "dataset.yaml").write_text(yaml.safe_dump(_spec()))
    out = runner.invoke(app, ["dataset", "check", str(tmp_path)]).output
    assert f"{tmp_path / 'rec' / 'a' / 'mic.json'}: start file has no field 'start_time_s'" in out
    assert f"{tmp_path / 'rec' / 'b' / 'mic.json'}: start file is not JSON" in out


def test_dataset_init_proposes_the_start_file(tmp_path):
    _recordings(tmp_path)
    out = tmp_path / "draft.yaml"
    result = runner.invoke(app, ["dataset", "init", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    spec = parse_spec(yaml.safe_load(out.read_text()))
    mic = spec.streams["mic"].clock
    assert mic.start_file == "mic.json" and mic.start_field == "start_time_s"
    assert "start time from mic.json" in out.read_text()
    check = runner.invoke(app, ["dataset", "check", str(tmp_path), "--spec", str(out)])
    assert check.exit_code == 0, check.output
