"""The model card of a registered version (issue 25, part 2), against real MLflow (SQLite).

One tiny model registered with an evaluation report built from predictions: the card is logged
as Markdown and HTML, set as (or summarised in) the version's description, and printed by
`modalops card`; a version without a card still gets one, saying what it lacks.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modalops.cli import app
from modalops.config.evaluate import EvaluateConfig
from modalops.dataset.spec import spec_from_text
from modalops.evaluate.evaluation import ModelOutputs, SplitTruth, build_report
from modalops.register import RescoringSet, log_and_register
from modalops.register.card import (
    CARD_HTML,
    CARD_MD,
    DESCRIPTION_LIMIT,
    NOT_MEASURED,
    NOT_RECORDED,
    CardSources,
    ModelCard,
    Section,
    build_card,
    description_of,
)
from modalops.register.card_lookup import find_version
from modalops.register.code_version import source_commit
from modalops.register.registry import RegistryReadError
from modalops.testing.models import (
    OTHER_SPEC_YAML,
    fit_tiny,
    make_samples,
    save_tiny,
    tiny_classifier,
)
from tests.conftest import REPO

runner = CliRunner()
# the non-demo spec, with a subject column: the card counts subjects, never names them
SPEC_YAML = OTHER_SPEC_YAML.replace(
    "  slices: [device]\n", "  slices: [device]\n  subject: participant\n"
)


def _report(samples, spec):
    """An evaluation report of a fused model and one baseline from noisy one-hot predictions;
    the fused model without `imu` guesses (it leans on that stream)."""
    rng = np.random.default_rng(0)
    y = np.array([s["label_index"] for s in samples])
    truth = SplitTruth(
        y, np.array([s["meta"]["session_id"] for s in samples]), pd.DataFrame(
            [s["meta"] for s in samples]
        )
    )  # fmt: skip

    def probs(noise: float) -> np.ndarray:
        z = 3.0 * np.eye(3)[y] + rng.normal(size=(len(y), 3)) * noise
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    fused = ModelOutputs(
        "fused", list(spec.streams), probs(2.0), probs(2.0), n_params=10, latency_ms=[1.0, 2.0],
        removed={"imu": probs(50.0), "wrist_video": probs(1.0)},
    )  # fmt: skip
    baseline = ModelOutputs("baseline:imu", ["imu"], probs(3.0), probs(3.0))
    cfg = EvaluateConfig(n_boot=50, min_slice_n=1, abstention_value=0.9)
    return build_report([fused, baseline], truth, truth, cfg, list(spec.labels.classes), ["device"])


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("card")
    spec = spec_from_text(SPEC_YAML, "tests/test_model_card.py")
    save_tiny(fit_tiny(tiny_classifier(spec), make_samples(spec, 12), steps=20), tmp / "model.pt")
    test = make_samples(spec, 24, seed=3)
    uri = f"sqlite:///{tmp}/mlflow.db"
    result = log_and_register(
        tracking_uri=uri,
        experiment="card",
        model_name="wrist",
        checkpoint_path=tmp / "model.pt",
        report=_report(test, spec),
        config_dict={},
        tags={"dataset_version": "v3"},
        artifacts={},
        test_samples_for_rescoring=RescoringSet.from_raw_samples(test, spec),
        dataset_spec=spec,
    )
    assert result.promoted
    from mlflow import MlflowClient

    return {"uri": uri, "client": MlflowClient(uri), "result": result, "tmp": tmp}


def _artifact(client, run_id, path, tmp):
    return Path(client.download_artifacts(run_id, path, str(tmp))).read_text()


def test_the_card_is_logged_and_described(registered, tmp_path):
    # the code's commit is recorded on the run (this suite runs from a git checkout)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    assert source_commit() is not None and source_commit().startswith(commit)
    client, result = registered["client"], registered["result"]
    md = _artifact(client, result.run_id, CARD_MD, tmp_path)
    page = _artifact(client, result.run_id, CARD_HTML, tmp_path)
    # what it is for, on what, how it scored, where it is weak, where it came from
    for words in (
        "# Model card: wrist v1", "`idle`, `walk`, `run`", "**Intended use**",
        "| `wrist_video` | video | reference clock |", "| `imu` | timeseries |  |",
        "24 windows, 4 sessions, 4 subjects", "macro-F1 [95% CI]", "| fused |",
        "| device=device_a |", "**Worst slice**: `device=", "ECE before calibration",
        "temperature", "test coverage", "leans on stream `imu`",
        "**Stream loss** (test macro-F1)", f"Clock skew: {NOT_MEASURED}",
        f"Alignment summary: {NOT_RECORDED}",
        "**Promotion gate**: promoted", f"model run: `{result.run_id}`",
        "dataset version: `v3`", "dataset spec digest: `", f"git commit: `{source_commit()}`",
    ):  # fmt: skip
        assert words in md, (words, md)
    assert "subject-0" not in md and "s3-0" not in md  # counts, never ids
    assert "<script" not in page.lower() and "<style>" in page and "<table>" in page
    assert "<code>imu</code>" in page
    description = client.get_model_version("wrist", result.model_version).description
    assert len(description) <= DESCRIPTION_LIMIT
    # the whole card where it fits, else the short form pointing to it
    assert description == md or (
        "**Known limitations**" in description and CARD_MD in description
    ), description
    assert "**Promotion gate**: promoted" in description


def test_modalops_card_prints_the_logged_card(registered, tmp_path):
    client, result = registered["client"], registered["result"]
    md = _artifact(client, result.run_id, CARD_MD, tmp_path)
    out = runner.invoke(app, ["card", "wrist@champion", "-s", f"registry.tracking_uri={registered['uri']}"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert out.output == md
    print(md)  # the card quoted in the closing note (pytest -s)
    page = runner.invoke(app, ["card", "wrist/1", "--html", "-s", f"registry.tracking_uri={registered['uri']}"])  # fmt: skip
    assert page.exit_code == 0 and page.output.startswith("<!doctype html>"), page.output


def test_unknown_model_alias_or_version_exits_1(registered):
    for ref, words in (("wrist/99", "no version 99"), ("wrist@nope", "no alias `nope`"),
                       ("nosuch", "'nosuch'")):  # fmt: skip
        out = runner.invoke(app, ["card", ref, "-s", f"registry.tracking_uri={registered['uri']}"])
        assert out.exit_code == 1, (ref, out.output)
        assert words in out.output, (ref, out.output)
        assert "# Model card" not in out.output


def test_a_version_without_a_card_still_gets_one(registered, tmp_path):
    """Older versions: v1 with its card artifacts deleted (the evaluation report is still in its
    run), a version made from v1's logged model, and one registered bare (no run at all)."""
    client, result, uri = registered["client"], registered["result"], registered["uri"]
    root = Path(urlparse(client.get_run(result.run_id).info.artifact_uri).path)
    kept = tmp_path / "kept"
    shutil.copytree(root / "model_card", kept)
    shutil.rmtree(root / "model_card")
    try:
        out = runner.invoke(app, ["card", "wrist/1", "-s", f"registry.tracking_uri={uri}"])
    finally:
        shutil.copytree(kept, root / "model_card")
    assert out.exit_code == 0, out.output
    for words in ("registered without a model card", "macro-F1 [95% CI]", "**Worst slice**",
                  f"subjects {NOT_RECORDED}", "`idle`, `walk`, `run`", "leans on stream `imu`",
                  "**Promotion gate**: promoted"):  # fmt: skip
        assert words in out.output, (words, out.output)

    # a version made from v1's logged model (its run holds v1's card) gets a card of its own
    again = client.create_model_version(
        "wrist", source=client.get_model_version("wrist", "1").source
    )
    out = runner.invoke(app, ["card", f"wrist/{again.version}", "-s", f"registry.tracking_uri={uri}"])  # fmt: skip
    assert out.exit_code == 0 and f"# Model card: wrist v{again.version}" in out.output, out.output
    assert "registered without a model card" in out.output

    (tmp_path / "bare").mkdir()
    bare = client.create_model_version(
        "wrist", source=(tmp_path / "bare").as_uri(), description="hand-made"
    )
    out = runner.invoke(app, ["card", f"wrist/{bare.version}", "-s", f"registry.tracking_uri={uri}"])  # fmt: skip
    assert out.exit_code == 0, out.output
    for words in (f"Dataset spec: {NOT_RECORDED}", "hand-made", f"Test figures: {NOT_RECORDED}",
                  f"Slices: {NOT_MEASURED}", f"Evaluation report: {NOT_RECORDED}",
                  "## Not recorded for this version"):  # fmt: skip
        assert words in out.output, (words, out.output)


def test_a_failed_registry_read_names_the_uri():
    from mlflow.exceptions import MlflowException

    class Broken:
        tracking_uri = "postgresql://u:secret@db.example/mlflow"

        def get_model_version_by_alias(self, name, alias):
            raise MlflowException("database is locked", error_code="INTERNAL_ERROR")

    with pytest.raises(RegistryReadError) as info:
        find_version(Broken(), "wrist@champion")
    assert "db.example" in str(info.value) and "secret" not in str(info.value)


def test_curves_are_shown_when_the_report_holds_them_and_a_long_card_is_summarised():
    report = {
        "headline": {"fused_macro_f1": 0.8, "n_test": 10, "best_unimodal": "imu", "lift": -0.2,
                     "lift_lo": -0.3, "lift_hi": -0.1, "ece_before": 0.1, "ece_after": 0.2},
        "skew": [{"stream": "imu", "skew_s": s, "macro_f1": 0.8 - abs(s) / 4} for s in (-1.0, 0.0, 1.0)],
        "slices": [
            {"column": "site", "value": f"v{i}", "n": 5, "n_sessions": 1, "macro_f1": 0.3,
             "macro_f1_lo": 0.1, "macro_f1_hi": 0.5, "flagged": True, "gap": 0.5}
            for i in range(60)
        ],
    }  # fmt: skip
    card = build_card(CardSources("m", "1", report=report, gate_min_macro_f1=0.5))
    md = card.markdown()
    assert "| stream | skew_s | macro_f1 |" in md and "| imu | -1.000 | 0.550 |" in md
    assert NOT_MEASURED not in md.split("**skew**")[1].split("##")[0]
    assert "slice `site=v0` scores macro-F1 0.300 [0.100, 0.500], below the gate's minimum" in md
    for words in ("fusion scores below the best single stream (imu): lift -0.200 [-0.300, -0.100]",
                  "calibration raised the test ECE (0.100 → 0.200)",
                  "slices from one test session, their intervals say nothing: `site=v0`"):  # fmt: skip
        assert words in md, words
    text = description_of(card, "short", "pointer")
    assert len(md) > DESCRIPTION_LIMIT >= len(text) and text.endswith("\n\npointer")


def test_the_evaluations_stress_result_is_shown_as_its_tables():
    """The shape modalops/evaluate/stress.py writes into report.json under `stress`."""
    from modalops.register.card import curve_blocks, stress_blocks

    stress = {
        "skew": [
            {"stream": "imu", "delta_s": d, "model": m, "macro_f1": f, "ece": 0.1,
             "coverage": 1.0, "n": 90}
            for d, f in ((-0.5, 0.42), (0.0, 0.515), (0.5, 0.46))
            for m in ("fused", "imu")
        ],
        "stream_loss": [
            {"stream": "imu", "mode": mode, "model": model, "macro_f1": f, "ece": 0.1,
             "coverage": 1.0, "n": 90}
            for mode, model, f in (("drop", "fused", 0.184), ("drop", "best_single", 0.459),
                                   ("noise", "fused", 0.316), ("noise", "best_single", 0.459))
        ],
        "skipped": [{"stream": "wrist_video", "test": "skew", "reason": "the reference stream"}],
        "seconds": 24.0,
    }  # fmt: skip
    md = ModelCard("c", [Section("Robustness", curve_blocks({"stress": stress}))]).markdown()
    assert "| `imu` | 0.184 | 0.459 | 0.316 | 0.459 |" in md, md
    assert (
        "| stream shifted | -0.5 s | +0 s | +0.5 s |" in md
        and "| `imu` | 0.420 | 0.515 | 0.460 |" in md
    )
    assert "skew on `wrist_video`: the reference stream" in md
    empty = {"skew": [], "stream_loss": [], "skipped": [{"stream": "", "test": "skew",
                                                         "reason": "evaluate.skew is off"}]}  # fmt: skip
    assert f"{NOT_MEASURED} (evaluate.skew is off)" in str(curve_blocks({"stress": empty}))
    assert stress_blocks(stress)
