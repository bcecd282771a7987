"""Every corruption kind the demo generator injects is caught by the real ingest → align →
validate chain, with its own reason (issue 4); what the scorer counts as caught is tested too.

The chain runs with the spec the generator writes at the raw root (modalops_demo/dataset.yaml)."""

from __future__ import annotations

import pandas as pd
import pytest

from modalops import quarantine
from modalops.config.validate import ValidateConfig
from modalops.store import open_store
from modalops_demo.corruption import CORRUPTION_KINDS, CorruptionRecord
from modalops_demo.detection import (
    EVIDENCE,
    detection_table,
    flag_scores,
    run_gate_stages,
    score_detections,
    wrong_label_windows,
)
from modalops_demo.generate import DemoDataConfig, generate_demo_data

LABEL_KINDS = ("label_shift", "label_swap")
FILE_KINDS = tuple(k for k in CORRUPTION_KINDS if k not in LABEL_KINDS)


def run_gate(root, demo: DemoDataConfig | None, vcfg: ValidateConfig):
    """Generate `demo` under root/raw (None: use what is there), then ingest → align → validate."""
    raw = open_store(str(root / "raw"))
    summary = generate_demo_data(raw, demo) if demo is not None else None
    gate = run_gate_stages(str(root / "raw"), str(root / "store"), vcfg)
    return summary, gate.result, gate.manifest


# ---- the scorer on a hand-made manifest ---------------------------------------------------------


def manifest_of(*rows: tuple) -> pd.DataFrame:
    return quarantine.to_frame([quarantine.QuarantineRecord(*r) for r in rows])


def test_a_defect_is_caught_only_by_evidence_of_its_own_kind():
    records = [
        CorruptionRecord("truncated_wav", "s1", "sessions/s1/audio.wav"),
        CorruptionRecord("flatline", "s1", "sessions/s1/vibration.parquet"),
        CorruptionRecord("nan_burst", "s2", "sessions/s2/vibration.parquet"),
        CorruptionRecord("sample_rate", "s3", "sessions/s3/audio.wav"),
    ]
    manifest = manifest_of(
        ("ingest", "s1", "audio", "/r/sessions/s1/audio.wav", "/r/sessions/s1/audio.wav: truncated WAV: header says 9 frames"),
        # s1's flatline shows as a different check: not evidence of a stuck sensor
        ("validate", "s1", "vibration", None, "vibration_nan_fraction: vib_nan_fraction=0.5", 3),
        ("ingest", "s2", "vibration", "/r/sessions/s2/vibration.parquet", "/r/sessions/s2/vibration.parquet: file is missing"),
    )  # fmt: skip
    samples = pd.DataFrame({"session_id": ["s1", "s2", "s3"]})
    got = {d.kind: d for d in score_detections(records, manifest, samples)}
    assert got["truncated_wav"].outcome == "caught"
    assert "truncated WAV" in got["truncated_wav"].evidence
    assert got["flatline"].outcome == "missed"
    # the stream was quarantined for another reason: its NaNs never reached the gate
    assert got["nan_burst"].outcome == "masked" and "file is missing" in got["nan_burst"].evidence
    assert got["sample_rate"].outcome == "missed"
    table = detection_table(list(got.values())).set_index("kind")
    assert table.loc["nan_burst", "masked"] == 1 and pd.isna(table.loc["nan_burst", "caught_%"])
    assert table.loc["truncated_wav", "caught_%"] == 100


def test_a_label_defect_is_caught_only_on_a_window_whose_label_it_changed():
    swap = CorruptionRecord(
        "label_swap", "s1", "sessions/s1/labels.csv", "interval 2 fault -> normal"
    )
    shift = CorruptionRecord(
        "label_shift", "s2", "sessions/s2/labels.csv", "interval 1 (proximity) shifted +1.50 s"
    )
    quiet = CorruptionRecord(
        "label_swap", "s3", "sessions/s3/labels.csv", "interval 0 fault -> normal"
    )
    clean = pd.DataFrame(
        {
            "session_id": ["s1"] * 3 + ["s2"] * 3 + ["s3"] * 2,
            "window_index": [0, 1, 2, 0, 1, 2, 0, 1],
            "label": [
                "normal",
                "fault",
                "fault",
                "normal",
                "normal",
                "proximity",
                "normal",
                "normal",
            ],
        }
    )
    noisy = clean.copy()
    noisy.loc[[1, 2], "label"] = "normal"  # s1: the swapped interval
    noisy.loc[4, "label"] = "proximity"  # s2: the interval grew one window to the left
    wrong = wrong_label_windows(noisy, clean)
    assert list(zip(wrong["session_id"], wrong["window_index"], strict=True)) == [
        ("s1", 1), ("s1", 2), ("s2", 1),
    ]  # fmt: skip
    flag = "label_inconsistent: given normal, out-of-fold p=0.01 (fault p=0.98)"
    manifest = manifest_of(
        ("validate", "s1", "labels", None, flag, 0),  # a correct window flagged: not evidence
        ("validate", "s2", "labels", None, flag, 1),
    )
    got = score_detections([swap, shift, quiet], manifest, noisy, wrong)
    assert [(d.outcome, d.bad_windows) for d in got] == [
        ("missed", 2), ("caught", 1), ("no_effect", 0),
    ]  # fmt: skip


def test_every_kind_has_evidence():
    assert set(EVIDENCE) == set(CORRUPTION_KINDS)


# ---- the real chain on generated data -------------------------------------------------------------


@pytest.fixture(scope="module")
def file_defects(tmp_path_factory):
    root = tmp_path_factory.mktemp("file-defects")
    demo = DemoDataConfig(sessions=10, duration_s=16.0, corrupt=dict.fromkeys(FILE_KINDS, 0.1))
    return run_gate(root, demo, ValidateConfig())


@pytest.mark.slow
@pytest.mark.parametrize("kind", FILE_KINDS)
def test_each_file_defect_is_caught_with_its_reason(file_defects, kind):
    summary, result, manifest = file_defects
    records = [r for r in summary.corrupted if r.kind == kind]
    assert records, f"the generator injected no {kind}"
    detections = score_detections(records, manifest, result.stats)
    assert {d.outcome for d in detections} <= {"caught", "masked"}, detections
    caught = [d for d in detections if d.outcome == "caught"]
    assert caught, f"every {kind} was masked by another defect: {detections}"
    where, _ = EVIDENCE[kind]
    for d in caught:
        if where == "file":  # the reason names the file
            assert d.file in d.evidence, d
        else:  # a rejected window of the defect's session, also in the quarantine manifest
            rows = manifest[
                (manifest["session_id"] == d.session_id) & (manifest["stage"] == "validate")
            ]
            assert (rows["reason"] == d.evidence).any()


@pytest.mark.slow
def test_file_defects_stop_the_gate_and_spare_untouched_sessions(file_defects):
    summary, result, manifest = file_defects
    assert not result.passed and result.bad_fraction > 0.05
    damaged = {r.session_id for r in summary.corrupted if r.kind != "jpeg"}
    rejected = set(result.rejected["session_id"])
    assert rejected and rejected <= damaged  # nothing of a clean session is lost
    every = set(summary.session_ids)
    assert every - damaged <= set(result.stats["session_id"])


@pytest.fixture(scope="module")
def label_defects(tmp_path_factory):
    # The default label_check_min_windows (1000) skips the check on sets this small, where its
    # model is weak; 0 runs it on 16 sessions x 40 s (~630 windows) to test the mechanism.
    vcfg = ValidateConfig(label_check_min_windows=0)
    size = {"sessions": 16, "duration_s": 40.0}
    _, clean, _ = run_gate(tmp_path_factory.mktemp("clean"), DemoDataConfig(**size), vcfg)
    demo = DemoDataConfig(**size, corrupt=dict.fromkeys(LABEL_KINDS, 0.1))
    summary, noisy, manifest = run_gate(tmp_path_factory.mktemp("labels"), demo, vcfg)
    return summary, clean, noisy, manifest


@pytest.mark.slow
def test_wrong_labels_are_caught_with_their_reason(label_defects):
    summary, clean, noisy, manifest = label_defects
    # on clean data (same signals and labels as generated) few correct windows are rejected
    assert len(clean.rejected) / len(clean.stats) < 0.03
    wrong = wrong_label_windows(noisy.stats, clean.stats)
    assert len(wrong) > 40
    detections = score_detections(summary.corrupted, manifest, noisy.stats, wrong)
    table = detection_table(detections).set_index("kind")
    # Thresholds from this data (default seed, deterministic), measured 2026-12-07: caught
    # label_shift 93.8% (15), label_swap 86.7% (13); flag precision 0.808, recall 0.708. Margin:
    # one missed window per kind (~7 points), 0.06 precision, ~8 windows of recall. Other seeds
    # of the same size gave caught 70.6-94.4%, precision 0.733-0.809, recall 0.466-0.708: a
    # change to the generator moves these figures, so re-measure them then (benchmarks/
    # validation_detection.py measures at scale).
    for kind in LABEL_KINDS:
        assert table.loc[kind, "caught"] >= 12, table
        assert table.loc[kind, "caught_%"] >= 80, table
    for d in detections:
        if d.outcome == "caught":
            assert d.evidence.startswith("label_inconsistent: given "), d
    # window by window: most flags are on wrong labels, most wrong labels are flagged
    flags = noisy.rejected[noisy.rejected["reason"].str.startswith("label_inconsistent")]
    scores = flag_scores(noisy, wrong)
    assert scores["flagged"] == len(flags)
    assert scores["flag_precision"] >= 0.75 and scores["flag_recall"] >= 0.62, scores
    q = noisy.quarantine[noisy.quarantine["reason"].str.startswith("label_inconsistent")]
    assert len(q) == len(flags) and (q["stream"] == "labels").all()


@pytest.mark.slow
def test_fixed_files_are_picked_up_on_the_next_run(tmp_path):
    """Quarantine is not a verdict for ever: after the files are fixed, a re-run accepts them;
    a defect left behind is listed again while the rest passes."""
    demo = DemoDataConfig(sessions=8, duration_s=16.0, seed=4, corrupt={"flatline": 0.25})
    summary, first, _ = run_gate(tmp_path, demo, ValidateConfig())
    flat = {r.session_id for r in summary.corrupted}
    assert not first.passed and set(first.rejected["session_id"]) == flat

    # the sensor is fixed: the same recordings written again without the defect
    raw = open_store(str(tmp_path / "raw"))
    generate_demo_data(raw, demo.model_copy(update={"corrupt": {}}))
    frame = "sessions/sess-0002/camera/f000005.jpg"  # ...but one frame is still damaged
    raw.put_bytes(frame, raw.get_bytes(frame)[:200])
    _, second, manifest = run_gate(tmp_path, None, ValidateConfig())
    assert second.passed, second.table_markdown()
    assert second.rejected.empty
    for sid in flat:  # every window of the fixed sessions is accepted now
        assert (second.stats["session_id"] == sid).sum() == (first.stats["session_id"] == sid).sum()
    hit = manifest[manifest["uri"].astype(str).str.endswith(frame)]
    assert len(hit) == 1 and "not a decodable JPEG" in hit["reason"].iloc[0]
