"""The command line: config inspection, refusals before any work, demo data generation."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from modalops.cli import app

runner = CliRunner()


def test_config_show_applies_overrides():
    result = runner.invoke(app, ["config", "show", "--set", "train.max_epochs=2"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["train"]["max_epochs"] == 2


def test_wrong_key_fails_before_any_work(tmp_path):
    result = runner.invoke(app, ["run", "--set", "align.window=2"])
    assert result.exit_code == 2
    assert "align.window: unknown key" in result.output


def test_data_demo_writes_layout_and_refuses_unknown_corruption(tmp_path):
    out = tmp_path / "raw"
    ok = runner.invoke(
        app,
        [
            "data",
            "demo",
            "--out",
            str(out),
            "--sessions",
            "2",
            "--duration",
            "8",
            "--corrupt",
            "jpeg=0.1",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert (out / "sessions.csv").exists() and (out / "truth" / "corruptions.json").exists()
    bad = runner.invoke(app, ["data", "demo", "--out", str(out), "--corrupt", "gremlins=0.1"])
    assert bad.exit_code == 2
    assert "gremlins" in bad.output
