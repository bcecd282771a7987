"""Skew and stream-loss curves (issue 25, part 1): pure tables, then the evaluation on demo
recordings cut by the real align code, with one stream's clock shifted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modalops.align.estimate import StreamEstimate
from modalops.align.session import shift_clocks
from modalops.config.evaluate import EvaluateConfig
from modalops.evaluate import EvaluationReport
from modalops.evaluate.result import StressResult
from modalops.evaluate.stress import (
    Calibration,
    loss_skips,
    signed_shifts,
    stream_loss_table,
    stress_metrics,
)


def test_signed_shifts_have_both_signs_and_zero_once():
    assert signed_shifts([0.0, 0.1, 2.0]) == [-2.0, -0.1, 0.0, 0.1, 2.0]
    assert signed_shifts([]) == [0.0]


def test_shift_clocks_moves_offset_and_pieces_and_refuses_the_reference():
    est = StreamEstimate("s", "audio", "estimate", 1.0, 5.0, pieces=[(-np.inf, 1.0, 5.0)])
    ref = StreamEstimate("s", "camera", "reference", 0.0, 0.0)
    out = shift_clocks({"audio": est, "camera": ref}, {"audio": 0.25}, "camera")
    assert out["audio"].offset_s == 1.25 and out["audio"].pieces == [(-np.inf, 1.25, 5.0)]
    assert est.offset_s == 1.0 and out["camera"] is not ref  # copies: the cache stays pristine
    assert float(out["audio"].to_device(10.0)) == pytest.approx(float(est.to_device(10.0)) + 0.25)
    with pytest.raises(ValueError, match="reference stream camera"):
        shift_clocks({"camera": ref}, {"camera": 0.1}, "camera")


def test_stream_loss_rows_compare_with_the_best_baseline_left():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    good = np.eye(3)[labels] * 0.8 + 0.2 / 3
    bad = np.full((60, 3), 1 / 3)
    table = stream_loss_table(
        {"a": bad, "b": good},
        {"a": bad, "b": good},
        {"baseline:a": (["a"], good), "baseline:b": (["b"], bad)},
        labels,
        Calibration(1.0, 0.5),
        10,
    )
    assert len(table) == 8  # 2 streams x 2 modes x (fused, best single)
    best = table[(table["model"] == "best_single") & (table["stream"] == "a")]
    # losing `a` leaves baseline:b only, however good baseline:a is
    assert (best["macro_f1"] < 0.5).all() and (best["coverage"] == 1.0).all()
    fused_b = table[(table["model"] == "fused") & (table["stream"] == "b")]
    assert (fused_b["macro_f1"] == 1.0).all() and (fused_b["coverage"] == 1.0).all()
    fused_a = table[(table["model"] == "fused") & (table["stream"] == "a")]
    assert (fused_a["coverage"] == 0.0).all()  # uniform probabilities: all abstained at 0.5


def test_a_single_stream_model_says_why_it_has_no_stream_loss():
    assert loss_skips(["audio"], EvaluateConfig()) == [
        {
            "stream": "audio",
            "test": "stream_loss",
            "reason": "the only stream: removing it leaves the model no input",
        }
    ]
    assert loss_skips(["a", "b"], EvaluateConfig()) == []


def test_stress_metrics_draw_curves_with_the_shift_in_ms_as_step():
    skew = pd.DataFrame(
        [
            {
                "stream": "a",
                "delta_s": d,
                "model": m,
                "macro_f1": f,
                "ece": 0.1,
                "coverage": 1.0,
                "n": 10,
            }  # fmt: skip
            for d, f in ((-0.1, 0.5), (0.0, 0.9), (0.1, 0.7))
            for m in ("fused", "baseline:a")
        ]
    )
    loss = pd.DataFrame(
        [
            {
                "stream": "a",
                "mode": "noise",
                "model": "fused",
                "macro_f1": 0.4,
                "ece": 0.2,
                "coverage": 0.5,
                "n": 10,
            }
        ]  # fmt: skip
    )
    points = stress_metrics(StressResult(skew=skew, stream_loss=loss))
    curve = [(v, step) for k, v, step in points if k == "skew/a/fused_macro_f1"]
    assert curve == [(0.5, -100), (0.9, 0), (0.7, 100)]
    named = {k: v for k, v, _ in points}
    assert named["skew/a/f1_drop_at_0.1s"] == pytest.approx(0.4)
    assert named["stream_loss/a/noise/fused_macro_f1"] == 0.4
    assert named["stream_loss/a/noise/f1_drop"] == pytest.approx(0.5)
    assert "skew/a/baseline_ece" in named


# ---- the evaluation on demo recordings through the real ingest, align and shard code -----------


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """8 demo sessions of 30 s aligned, sharded, a tiny fused model and the audio baseline
    trained, evaluated with the skew pass at 0 and +-6 s."""
    from modalops.align import align_dataset
    from modalops.config.align import AlignConfig
    from modalops.config.data import IngestConfig
    from modalops.config.pipeline import ShardConfig
    from modalops.dataset.spec import load_spec_file
    from modalops.evaluate.evaluation import evaluate_models
    from modalops.evaluate.stress import SkewInputs
    from modalops.ingest import ingest_recordings
    from modalops.shard import iter_raw_samples, write_shards
    from modalops.store import LocalStore
    from modalops.testing.models import fit_tiny, save_tiny, tiny_classifier
    from modalops_demo.generate import DemoDataConfig, generate_demo_data

    tmp = tmp_path_factory.mktemp("stress")
    raw = LocalStore(tmp / "raw")
    generate_demo_data(raw, DemoDataConfig(sessions=8, duration_s=30.0, seed=3, corrupt={}))
    spec = load_spec_file(tmp / "raw" / "dataset.yaml")
    ingest = IngestConfig(raw_uri=raw.root)
    ingested = ingest_recordings(raw, spec, ingest)
    store, align = LocalStore(tmp / "store"), AlignConfig()
    aligned = align_dataset(raw, spec, ingested.catalog, align, store, "a", ingested.quarantine)
    manifest = write_shards(
        store, spec, aligned.part_keys, None, ShardConfig(samples_per_shard=64),
        extra={"align": align.model_dump(mode="json")}, window_s=align.window_s,
    )  # fmt: skip
    train = list(iter_raw_samples(store, manifest, "train"))

    class Trained:
        def __init__(self, model_id, streams):
            self.model_id, self.streams = model_id, streams
            self.checkpoint_key = f"models/{model_id.replace(':', '_')}.pt"

    trained = [Trained("fused", list(spec.stream_names)), Trained("baseline:audio", ["audio"])]
    for t in trained:
        model = tiny_classifier(spec, t.streams, seed=3, window_s=align.window_s, hidden_dim=8)
        model = fit_tiny(model, train, 60)
        store.put_file(t.checkpoint_key, save_tiny(model, tmp / "m.pt"))
    cfg = EvaluateConfig(n_boot=20, latency_samples=2, skew_s=[0.0, 6.0])
    report = evaluate_models(store, manifest, trained, cfg, "e", SkewInputs(raw, ingest))
    return report, store, spec, aligned


def test_no_shift_scores_exactly_as_the_evaluation(evaluated):
    report, _, _, _ = evaluated
    fused = report.models.set_index("model_id").loc["fused"]
    zero = report.stress.skew[(report.stress.skew["delta_s"] == 0.0)]
    for row in zero.to_dict("records"):
        want = report.models.set_index("model_id").loc[row["model"]]
        assert row["macro_f1"] == want["macro_f1"] and row["n"] == report.headline["n_test"]
        assert row["ece"] == pytest.approx(want["ece"], abs=1e-9)
    assert set(zero["stream"]) == {"audio", "vibration", "notes"}
    assert float(fused["macro_f1"]) == report.headline["fused_macro_f1"]


def test_a_two_second_audio_skew_costs_the_fused_model(evaluated):
    report, _, _, _ = evaluated
    skew = report.stress.skew
    fused = skew[(skew["stream"] == "audio") & (skew["model"] == "fused")].set_index("delta_s")
    # measured on this data: 0.515 at 0, 0.228 at -6 s, 0.272 at +6 s (demo labels last 2-9 s,
    # so a shift of several seconds puts most audio windows under another label)
    worst = min(fused.loc[-6.0, "macro_f1"], fused.loc[6.0, "macro_f1"])
    assert fused.loc[0.0, "macro_f1"] - worst > 0.15
    baseline = skew[(skew["stream"] == "audio") & (skew["model"] == "baseline:audio")]
    assert len(baseline) == 3  # the stream's own baseline is scored on every shift
    assert not len(skew[(skew["stream"] != "audio") & (skew["model"] == "baseline:audio")])


def test_stream_loss_and_skips_are_in_the_stored_report(evaluated):
    report, store, spec, _ = evaluated
    loss = report.stress.stream_loss
    for stream in spec.stream_names:
        for mode in ("drop", "noise"):
            rows = loss[(loss["stream"] == stream) & (loss["mode"] == mode)]
            assert "fused" in set(rows["model"]), (stream, mode)
    # the audio baseline is the only one: it stands in for every stream but audio
    assert set(loss.loc[loss["model"] == "best_single", "stream"]) == set(spec.stream_names) - {
        "audio"
    }
    assert {
        "stream": "camera",
        "test": "skew",
        "reason": "the reference stream defines the timeline",
    } in report.stress.skipped
    back = EvaluationReport.from_json(store.get_text("e/report.json"))
    pd.testing.assert_frame_equal(
        back.stress.skew.reset_index(drop=True), report.stress.skew.reset_index(drop=True),
        check_dtype=False,
    )  # fmt: skip
    assert (
        len(back.stress.stream_loss) == len(loss) and back.stress.skipped == report.stress.skipped
    )
    for name in ("skew_macro_f1", "skew_ece", "skew_coverage", "stream_reliance"):
        assert store.get_bytes(f"e/plots/{name}.png")[:4] == b"\x89PNG"
    assert "Skew: each stream" in store.get_text("e/report.html")
