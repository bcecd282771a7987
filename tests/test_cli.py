"""The command line: config inspection, refusals before any work, dataset specs, demo data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml
from typer.testing import CliRunner

from modalops.cli import app
from modalops.dataset.spec import parse_spec
from modalops.kinds.audio.wav import encode_wav
from modalops_demo.cli import app as demo_app

runner = CliRunner()


def test_config_show_applies_overrides():
    result = runner.invoke(app, ["config", "show", "--set", "train.max_epochs=2"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["train"]["max_epochs"] == 2


def test_wrong_key_fails_before_any_work(tmp_path):
    result = runner.invoke(app, ["run", "--set", "align.window=2"])
    assert result.exit_code == 2
    assert "align.window: unknown key" in result.output


def test_demo_data_writes_layout_and_refuses_unknown_corruption(tmp_path):
    out = tmp_path / "raw"
    ok = runner.invoke(
        demo_app,
        ["data", "--out", str(out), "--sessions", "2", "--duration", "8", "--corrupt", "jpeg=0.1"],
    )
    assert ok.exit_code == 0, ok.output
    assert (out / "sessions.csv").exists() and (out / "truth" / "corruptions.json").exists()
    assert (out / "dataset.yaml").exists()
    bad = runner.invoke(demo_app, ["data", "--out", str(out), "--corrupt", "gremlins=0.1"])
    assert bad.exit_code == 2
    assert "gremlins" in bad.output


def _recordings(root, n_sessions: int = 3) -> None:
    """A small folder as a user might bring it: a wrist IMU (ms timestamps), a microphone, label
    intervals per session, a participants table; no name of the demo's."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_sessions):
        sid = f"run{i:02d}"
        folder = root / "data" / sid
        folder.mkdir(parents=True)
        t = np.arange(0, 12_000, 20)  # 50 Hz, milliseconds
        pd.DataFrame(
            {"time_ms": t, "gx": rng.normal(size=t.size), "gy": rng.normal(size=t.size)}
        ).to_csv(folder / "imu.csv", index=False)
        (folder / "mic.wav").write_bytes(encode_wav(rng.normal(0, 0.1, 8000 * 12), 8000))
        pd.DataFrame(
            {
                "start_s": [0.0, 4.0, 8.0],
                "end_s": [4.0, 8.0, 12.0],
                "label": ["rest", "lift", "carry"],
            }
        ).to_csv(folder / "labels.csv", index=False)
        rows.append({"recording": sid, "participant": f"p{i % 2}", "device": f"d{i % 2}"})
    pd.DataFrame(rows).to_csv(root / "recordings.csv", index=False)


def test_dataset_init_drafts_a_spec_that_checks_clean(tmp_path):
    raw = tmp_path / "raw"
    _recordings(raw)
    out = tmp_path / "dataset.yaml"
    result = runner.invoke(app, ["dataset", "init", str(raw), "--out", str(out)])
    assert result.exit_code == 0, result.output
    spec = parse_spec(yaml.safe_load(out.read_text()))
    assert {s.kind for s in spec.streams.values()} == {"timeseries", "audio"}
    imu = spec.params("imu")
    assert imu.time_column == "time_ms" and imu.time_unit == "ms"
    assert imu.channels == ["gx", "gy"] and abs(imu.sample_rate - 50.0) < 1e-6
    assert spec.params("mic").sample_rate == 8000
    assert spec.labels.source == "intervals" and spec.labels.classes == ["rest", "lift", "carry"]
    assert spec.sessions.table == "recordings.csv" and spec.sessions.id_column == "recording"
    assert spec.metadata.subject == "participant" and "device" in spec.metadata.slices
    check = runner.invoke(app, ["dataset", "check", str(raw), "--spec", str(out)])
    assert check.exit_code == 0, check.output
    assert "3 sessions, 2 streams checked: OK" in check.output


def test_dataset_check_names_file_and_line_and_exits_nonzero(tmp_path):
    raw = tmp_path / "raw"
    _recordings(raw)
    spec = tmp_path / "dataset.yaml"
    runner.invoke(app, ["dataset", "init", str(raw), "--out", str(spec)])
    imu = raw / "data" / "run01" / "imu.csv"
    df = pd.read_csv(imu)
    df.loc[10, "time_ms"] = df.loc[5, "time_ms"]  # out of order at data row 10 (line 12)
    df.to_csv(imu, index=False)
    labels = raw / "data" / "run02" / "labels.csv"
    labels.write_text(labels.read_text().replace("carry", "jump"))
    (raw / "data" / "run00" / "mic.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    result = runner.invoke(app, ["dataset", "check", str(raw), "--spec", str(spec)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert f"{imu}: " in out and "out of order" in out and "line 12" in out
    assert f"{labels}: " in out and "unknown labels ['jump']" in out
    assert "mic.wav" in out and "WAV" in out
    assert "3 problems" in out


def test_dataset_check_refuses_a_bad_spec_naming_the_field(tmp_path):
    raw = tmp_path / "raw"
    _recordings(raw, 2)
    spec = tmp_path / "dataset.yaml"
    runner.invoke(app, ["dataset", "init", str(raw), "--out", str(spec)])
    doc = yaml.safe_load(spec.read_text())
    doc["streams"]["imu"]["kind"] = "lidar"
    spec.write_text(yaml.safe_dump(doc))
    result = runner.invoke(app, ["dataset", "check", str(raw), "--spec", str(spec)])
    assert result.exit_code == 2
    assert "streams.imu.kind: unknown kind 'lidar'" in result.output


def test_dataset_kinds_lists_every_kind():
    result = runner.invoke(app, ["dataset", "kinds"])
    assert result.exit_code == 0, result.output
    for kind in ("image", "video", "audio", "timeseries", "text"):
        assert f"{kind}: " in result.output
    assert "params.time_column" in result.output
