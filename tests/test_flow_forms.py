"""Per-flow run forms (modalops.config.forms) and the figures and tables artifacts show
(modalops.markdown, modalops.run_summaries): no Prefect server needed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from modalops.config import PipelineConfig, load_config
from modalops.config.forms import BatchInferenceForm, FeedbackForm, TrainingForm
from modalops.markdown import bullets, cell, figure, frame_table
from modalops.run_summaries import (
    batch_summary_markdown,
    feedback_summary_markdown,
    training_summary_markdown,
    verdict_markdown,
)
from tests.conftest import REPO
from tests.prefect_reads import long_figures

FORMS = (TrainingForm, BatchInferenceForm, FeedbackForm)
# inputs in the run form, measured when the forms were made (issue 24); a new setting in a
# section a flow reads may add a few, a section leaking into the wrong form adds many more
MAX_FIELDS = {TrainingForm: 110 + 10, BatchInferenceForm: 45 + 5, FeedbackForm: 15 + 3}
BEFORE = 126  # inputs of the whole PipelineConfig, which every flow's form showed


def _ci(*overrides: str) -> PipelineConfig:
    return load_config([REPO / "configs" / "ci.yaml"], list(overrides))


def test_each_form_shows_the_sections_its_flow_reads_common_settings_first():
    assert list(TrainingForm.model_fields)[:5] == [
        "name", "raw_uri", "streams", "max_epochs", "baselines",
    ]  # fmt: skip
    assert set(TrainingForm.model_fields) - set(TrainingForm.PROMOTED) - {"name"} == {
        "store", "ingest", "align", "validation", "shard", "train", "evaluate", "registry",
        "dask",
    }  # fmt: skip
    assert list(BatchInferenceForm.model_fields)[:5] == [
        "name", "raw_uri", "sessions", "model_name", "alias",
    ]  # fmt: skip
    assert "train" not in BatchInferenceForm.model_fields
    assert list(FeedbackForm.model_fields) == [
        "name", "model_name", "store", "ingest", "inference", "align", "review",
    ]  # fmt: skip
    # a moved-up field is not asked twice
    assert "max_epochs" not in TrainingForm.model_fields["train"].annotation.model_fields
    for form in FORMS:
        count = form.field_count()
        assert count <= MAX_FIELDS[form], (form.__name__, count)
        assert count < BEFORE
        top = len(form.model_fields)
        assert top <= 14, (form.__name__, top)


def test_the_form_schema_marks_every_field_required_and_titles_null():
    """Prefect's form labels a field not in `required` "(Optional)"; the deployment fills every
    field, so each is required. A null branch reads "not set", not the type name."""
    schema = TrainingForm.model_json_schema()
    for node in [schema, *schema["$defs"].values()]:
        if node.get("properties") and node["title"].startswith("TrainingForm"):
            assert set(node["required"]) == set(node["properties"]), node["title"]
    streams = schema["properties"]["streams"]
    assert {"title": "not set", "type": "null"} in streams["anyOf"]
    assert "(`train.streams`)" in streams["description"]
    assert schema["properties"]["train"]["title"] == "Train"


def test_form_values_rebuild_the_config_the_flow_runs_with():
    cfg = _ci("train.max_epochs=4", "inference.sessions=champion_test", "shard.seed=5")
    form = TrainingForm.from_config(cfg)
    assert form.max_epochs == 4
    rebuilt = TrainingForm.model_validate(form.model_dump(mode="json")).pipeline_config()
    for section in ("name", *TrainingForm.SECTIONS):
        assert getattr(rebuilt, section) == getattr(cfg, section), section
    # the sections training does not read are the defaults'
    assert rebuilt.inference == PipelineConfig().inference
    batch = BatchInferenceForm.from_config(cfg)
    assert batch.sessions == "champion_test"
    assert batch.pipeline_config().inference == cfg.inference
    assert batch.pipeline_config().registry.model_name == cfg.registry.model_name


def test_a_pipeline_config_or_its_json_is_taken_as_it_is():
    """`modalops run` and the tests call the flows with a PipelineConfig: nothing changes."""
    cfg = _ci("inference.sessions=champion_test")
    for form in FORMS:
        assert form.model_validate(cfg).pipeline_config() is cfg
        assert form.config_of(cfg.model_dump(mode="json")) == cfg


def test_a_bad_form_value_names_its_setting():
    data = TrainingForm.form_data(_ci())
    data["shard"] = {**data["shard"], "val_fraction": 0.5, "test_fraction": 0.45}
    with pytest.raises(ValueError, match=r"shard: .*under 10% of sessions"):
        TrainingForm.model_validate(data)
    with pytest.raises(ValueError, match="max_epochs"):
        TrainingForm.model_validate({**TrainingForm.form_data(_ci()), "max_epochs": 0})
    with pytest.raises(ValueError, match="inference"):  # not a training setting
        TrainingForm.model_validate({**TrainingForm.form_data(_ci()), "inference": {}})


def test_a_tracking_password_reference_stays_a_reference_in_the_form(monkeypatch):
    monkeypatch.setenv("MODALOPS_TEST_FORM_PW", "s3cretpw")
    ref = "postgresql://mlflow:${MODALOPS_TEST_FORM_PW}@db.internal:5432/mlflow"
    cfg = _ci(f"registry.tracking_uri={ref}")
    data = TrainingForm.form_data(cfg)
    assert data["registry"]["tracking_uri"] == ref
    assert "s3cretpw" not in str(data)
    rebuilt = TrainingForm.model_validate(data).pipeline_config()
    assert rebuilt.registry.tracking_uri == cfg.registry.tracking_uri


# ---- figures and tables ------------------------------------------------------------------------


def test_figures_are_rounded_for_people():
    assert figure(12.118220730649366) == "12.12"
    assert figure(0.017991018579837093) == "0.01799"
    assert figure(1.0) == "1"
    assert figure(float("nan")) == "n/a"
    assert figure(3) == "3" and figure(True) == "True" and figure(None) == "None"
    assert figure({"a": 0.123456, "b": [1.23456789]}) == "a 0.1235, b 1.235"
    assert cell("x" * 100, width=10) == "x" * 9 + "…"
    assert cell("a|b") == "a/b"
    text = bullets({"median_confidence": 33.66920176397647, "sessions": 10})
    assert text == "- **median_confidence**: 33.67\n- **sessions**: 10"


def test_frame_table_rounds_and_counts_the_rows_left_out():
    import pandas as pd

    df = pd.DataFrame({"offset_s": [12.118220730649366, 0.5, 1.25], "stream": ["a", "b", "c"]})
    out = frame_table(df, max_rows=2)
    assert "| 12.12 | a |" in out
    assert "1 more rows" in out
    assert frame_table(None) == "_(none)_"


def test_the_verdict_fits_its_pane():
    check = SimpleNamespace
    checks = [
        check(check="catalog_columns", observed="all present", expected="columns ⊇ " + ", ".join(
            f"column_{i}" for i in range(30)), severity="fail", passed=True),
        check(check="near_dup", observed="67 of 147", expected="≤ 0.00%", severity="warn",
              passed=False),
        check(check="bad_sample_fraction", observed="9.00%", expected="≤ 5.00%", severity="fail",
              passed=False),
    ]  # fmt: skip
    out = verdict_markdown(checks, width=70)
    assert out.index("## Not passed (2)") < out.index("## Passed (1)")
    assert "| near_dup | warn | 67 of 147 | ≤ 0.00% |" in out
    assert "| bad_sample_fraction | FAIL |" in out
    for line in out.splitlines():
        if line.startswith("| catalog_columns"):
            assert line.count("|") == 4  # check, observed, expected: no severity, no result
            assert max(len(c.strip()) for c in line.split("|")) <= 70
    assert "severity" not in out


def test_flow_summaries_are_one_table_with_rounded_figures():
    summary = {
        "run_key": "20261207T000000Z-abc123",
        "dataset_version": "ds-1234",
        "splits": {"train": 200, "val": 40, "test": 54},
        "validation_passed": True,
        "bad_fraction": 0.0123456789,
        "model_name": "modalops-ci",
        "model_version": "2",
        "aliases": ["challenger"],
        "promoted": False,
        "promotion_reasons": ["macro-F1 0.41 < champion 0.52"],
        "models": [
            {"model_id": "fused", "streams": "camera,audio", "macro_f1": 0.512345678,
             "accuracy": 0.6001, "ece": 0.0712345},
            {"model_id": "audio", "streams": "audio", "macro_f1": 0.3, "accuracy": 0.4,
             "ece": 0.1},
        ],
    }  # fmt: skip
    out = training_summary_markdown(summary)
    assert "| dataset version | `ds-1234` |" in out
    assert "| samples per split | train 200, val 40, test 54 |" in out
    assert "| validation gate | passed (1.23% bad) |" in out
    assert "| registered | `modalops-ci` v2 |" in out
    assert "| decision | not promoted |" in out
    assert "| fused | camera,audio | 0.5123 | 0.6001 | 0.07123 |" in out
    assert "- macro-F1 0.41 < champion 0.52" in out
    assert not long_figures(out)

    batch = {"model": "modalops-ci v2", "windows": 120, "sessions_predicted": 3, "routed": 17,
             "routed_share": 0.141666666, "reasons": {"least confident": 17},
             "latency_per_window_ms": 1.23456789, "windows_per_s_end_to_end": 12.118220730649366,
             "cost_per_1k_usd": 0.0000342937}  # fmt: skip
    out = batch_summary_markdown(batch, {"tasks": 17, "imported": 17, "url": "http://ls/p/1"}, "r1")
    assert "| routed to review | 17 (14.2%) |" in out
    assert "| windows/s end to end | 12.12 |" in out
    assert not long_figures(out)
    out = feedback_summary_markdown("modalops-ci", {"reviews": 3, "written": 2, "conflicts": 1,
                                                    "already_recorded": 0, "version": "v000002"})  # fmt: skip
    assert "| corrections written | 2 |" in out and "| corrections version | v000002 |" in out
