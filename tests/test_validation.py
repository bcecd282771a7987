"""Validation gate on the demo's spec: each check fails on a table built to break it and passes on
a clean one. Suites, statistics and subgroups all come from the spec's streams and metadata."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from modalops.config.validate import ValidateConfig
from modalops.dataset.spec import parse_spec
from modalops.kinds.timeseries.window import npy_bytes
from modalops.quarantine import QUARANTINE_COLUMNS
from modalops.testing.samples import jpeg, make_catalog, make_samples, table, wav
from modalops.validate import (
    ValidationGateError,
    gate_splits,
    hamming,
    phash,
    raise_for_gate,
    sample_stats,
    split_leak_checks,
    validate_dataset,
    with_split_checks,
)
from modalops_demo.names import demo_spec

SITES = ("plant-a", "plant-b")


def demo_meta(s: int, column: str) -> str:
    return {
        "station_id": f"st{s % 3}",
        "site": SITES[s % 2],
        "camera_model": "cam-x",
        "microphone": "mic-y",
        "lighting": "day" if s % 3 else "night",
    }[column]


def spec_with_audio_rate():
    """The demo spec, with the audio files' native rate checked per window (16 kHz)."""
    doc = demo_spec().to_dict()
    doc["streams"]["audio"]["checks"]["file_rate"] = 16000
    return parse_spec(doc)


SPEC = spec_with_audio_rate()


def vibration(seed: int, rows: int = 100) -> np.ndarray:
    return table(seed, rows, 3)


def samples_of(n_sessions: int = 6, windows: int = 25) -> pd.DataFrame:
    return make_samples(
        SPEC, n_sessions, windows, meta_of=demo_meta,
        text_of=lambda s, w: "guard checked, ok" if w % 5 == 0 else "",
    )  # fmt: skip


def validate(catalog, samples, cfg=None, **kw):
    return validate_dataset(SPEC, catalog, samples, cfg or ValidateConfig(), **kw)


@pytest.fixture(scope="module")
def clean():
    samples = samples_of()
    return samples, make_catalog(samples, SPEC), sample_stats(samples, SPEC)


def by_name(result):
    return {c.check: c for c in result.checks}


# ---- stats --------------------------------------------------------------------------------


def test_sample_stats_of_clean_payloads(clean):
    samples, _, stats = clean
    assert len(stats) == len(samples)
    assert stats["camera__decodable"].all() and stats["audio__decodable"].all()
    assert set(stats["camera__width"]) == {64} and set(stats["audio__rate"]) == {16000}
    assert np.allclose(stats["audio__duration_s"], 1.0)
    assert np.allclose(stats["audio__rms"], 0.1, rtol=0.1)
    assert (stats["vibration__rows"] == 100).all() and (
        stats["vibration__flat_channels"] == 0
    ).all()
    assert (stats["camera__blur"] > 100).all()
    # text stats only where the text stream is present
    assert stats.loc[~stats["has__notes"], "notes__len"].isna().all()
    assert (stats.loc[stats["has__notes"], "notes__len"] == len("guard checked, ok")).all()


def test_broken_payloads_are_flagged():
    samples = samples_of(1, 6)
    bad_audio = bytearray(wav(1))
    samples.at[0, "x__camera"] = b"\xff\xd8\xff\xe0garbage-not-a-jpeg"
    samples.at[1, "x__audio"] = bytes(bad_audio[: len(bad_audio) // 2])  # truncated
    samples.at[2, "x__audio"] = wav(2, rate=8000)
    arr = vibration(3)
    arr[10:40, 0] = np.nan
    samples.at[3, "x__vibration"] = npy_bytes(arr)
    arr = vibration(4)
    arr[:, 2] = -1.473  # not exactly representable: float32 rounding must not hide it
    samples.at[4, "x__vibration"] = npy_bytes(arr)
    samples.at[5, "x__notes"] = "bad \ufffd decode"
    samples.at[5, "has__notes"] = True
    stats = sample_stats(samples, SPEC)
    assert not stats["camera__decodable"].iloc[0]
    assert not stats["audio__decodable"].iloc[1]
    assert stats["audio__rate"].iloc[2] == 8000
    assert stats["vibration__nan_fraction"].iloc[3] == pytest.approx(30 / 300)
    assert stats["vibration__flat_channels"].iloc[4] == 1
    assert not stats["notes__valid_utf8"].iloc[5]


def test_a_table_with_the_wrong_channel_count_is_not_decodable():
    samples = samples_of(1, 2)
    samples.at[0, "x__vibration"] = npy_bytes(table(0, 100, 2))  # the spec declares 3 channels
    stats = sample_stats(samples, SPEC)
    assert not stats["vibration__decodable"].iloc[0] and stats["vibration__decodable"].iloc[1]


def test_phash_is_stable_under_recompression_and_differs_between_images():
    a = np.asarray(Image.open(io.BytesIO(jpeg(1))).convert("L"))
    b = np.asarray(Image.open(io.BytesIO(jpeg(2))).convert("L"))
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=40)
    a2 = np.asarray(Image.open(buf).convert("L"))
    ha, ha2, hb = (np.uint64(phash(x)) for x in (a, a2, b))
    assert hamming(ha, ha2) <= 4
    assert hamming(ha, hb) > 10


# ---- the gate -----------------------------------------------------------------------------


def test_clean_dataset_passes_with_gx_and_data_docs(clean, tmp_path):
    samples, catalog, stats = clean
    result = validate(catalog, samples, docs_dir=tmp_path / "docs", stats=stats)
    failing = [c for c in result.checks if not c.passed and c.severity == "fail"]
    assert result.passed, result.table_markdown()
    assert not failing
    assert result.rejected.empty and result.bad_fraction == 0.0
    assert (tmp_path / "docs" / "index.html").exists()
    names = by_name(result)
    assert names["drift"].observed == "skipped" and names["drift"].passed
    # the catalog suite has each stream's kind's rules
    assert {
        "catalog_vibration_rate",
        "catalog_vibration_nan_fraction",
        "catalog_camera_bad_frames",
    } <= set(names)
    raise_for_gate(result)  # does not raise


def corrupt(samples: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    """One distinct defect per row (in order), each meant to break one expectation."""
    df = samples.copy()
    arr_nan = vibration(99)
    arr_nan[:50, 1] = np.nan
    arr_flat = vibration(98)
    arr_flat[:, 0] = 1.0
    defects = [
        ("x__camera", b"not a jpeg at all", "camera_decodable"),
        ("x__camera", jpeg(5, size=(32, 32)), "camera_width"),
        ("x__camera", jpeg(6, dark=True), "camera_brightness"),
        ("x__camera", jpeg(7, flat=128), "camera_blur"),
        ("x__audio", wav(8)[:-6000], "audio_decodable"),
        ("x__audio", wav(9, rate=22050), "audio_rate"),
        ("x__audio", wav(10, seconds=0.5), "audio_duration"),
        ("x__audio", wav(11, amp=0.5), "audio_clipping"),
        ("x__audio", wav(12, amp=0.0), "audio_rms"),
        ("x__vibration", npy_bytes(arr_nan), "vibration_nan_fraction"),
        ("x__vibration", npy_bytes(arr_flat), "vibration_flat_channels"),
        ("x__vibration", npy_bytes(vibration(13, rows=40)), "vibration_rate"),
        ("x__vibration", npy_bytes(vibration(14) * 1000), "vibration_min"),
        ("label", "explosion", "label_in_set"),
        ("align_confidence", 0.5, "align_confidence"),
    ]
    expected = {}
    for row, (col, value, check) in zip(rows, defects, strict=False):
        df.at[row, col] = value
        expected[(df.at[row, "session_id"], int(df.at[row, "window_index"]))] = check
    return df, expected


def test_every_per_sample_expectation_catches_its_defect(clean):
    samples, catalog, _ = clean
    rows = list(range(0, 150, 10))  # 15 of 150 samples: 10% bad, above the 5% gate
    bad, expected = corrupt(samples, rows)
    result = validate(catalog, bad)
    rejected = {(r.session_id, int(r.window_index)): r.reason for r in result.rejected.itertuples()}
    assert set(rejected) == set(expected)
    for key, check in expected.items():
        assert rejected[key].startswith(check + ":"), (check, rejected[key])
    names = by_name(result)
    for check in expected.values():
        assert "1 of" in names[check].observed, names[check]
    assert result.bad_fraction == pytest.approx(15 / 150)
    assert not names["bad_sample_fraction"].passed
    assert not result.passed
    with pytest.raises(ValidationGateError) as err:
        raise_for_gate(result)
    msg = str(err.value)
    assert "| bad_sample_fraction |" in msg and "10.00%" in msg
    assert "| check | observed | expected | severity | result |" in msg
    # Quarantine rows follow the shared manifest, blaming the stream.
    assert list(result.quarantine.columns) == list(QUARANTINE_COLUMNS)
    assert (result.quarantine["stage"] == "validate").all() and len(result.quarantine) == 15
    q = result.quarantine.set_index(["session_id", "window_index"])
    assert q.loc[("s00", 0), "stream"] == "camera"
    assert q.loc[("s03", 15), "stream"] == "vibration"  # row 90: the NaN burst


def test_below_the_gate_passes_with_rejected_rows_listed(clean):
    samples, catalog, _ = clean
    bad, expected = corrupt(samples, [3, 77])  # 2 of 150 = 1.3%
    result = validate(catalog, bad)
    assert result.passed, result.table_markdown()
    assert len(result.rejected) == 2
    keys = zip(result.rejected["session_id"], result.rejected["window_index"], strict=True)
    assert set(keys) == set(expected)
    assert result.bad_fraction == pytest.approx(2 / 150)
    # The per-sample check failed for one row but within `mostly`: reported, not fatal.
    assert by_name(result)["camera_decodable"].observed.startswith("1 of")


def test_severity_override_turns_a_failure_into_a_warning(clean):
    samples, catalog, _ = clean
    bad, _ = corrupt(samples, list(range(0, 150, 10)))
    assert not validate(catalog, bad).passed
    result = validate(catalog, bad, ValidateConfig(severity={"bad_sample_fraction": "warn"}))
    assert result.passed
    check = by_name(result)["bad_sample_fraction"]
    assert check.severity == "warn" and not check.passed
    assert "warn" in result.table_markdown()
    # Exact names win over prefixes, longer prefixes over shorter ones.
    cfg = ValidateConfig(severity={"*": "warn", "camera_*": "fail", "camera_blur": "warn"})
    result = validate(catalog, bad, cfg)
    sev = {c.check: c.severity for c in result.checks}
    assert sev["camera_width"] == "fail" and sev["camera_blur"] == "warn"
    assert sev["bad_sample_fraction"] == "warn" and result.passed


def test_dataset_checks_class_subgroup_completeness(clean):
    samples, catalog, stats = clean
    df = stats.copy()
    df.loc[df["label"] == "near_miss", "label"] = "normal"  # near_miss share → 0
    result = validate(catalog, samples, ValidateConfig(min_samples_per_subgroup=80), stats=df)
    names = by_name(result)
    assert not names["min_class_fraction"].passed
    assert "near_miss" in names["min_class_fraction"].observed
    # subgroups are the spec's metadata.slices
    assert {f"min_samples_per_{c}" for c in SPEC.metadata.slices} <= set(names)
    assert "min_samples_per_station_id" not in names  # carried, but not a slice
    assert not names["min_samples_per_lighting"].passed  # night: 2 sessions × 25 = 50 < 80
    assert not names["min_samples_per_site"].passed  # 75 per site < 80
    assert names["min_samples_per_camera_model"].passed  # one model, 150 samples
    # the config may name other columns
    only = validate(catalog, samples, ValidateConfig(subgroup_cols=["station_id"]), stats=stats)
    assert [c.check for c in only.checks if c.check.startswith("min_samples_per_")] == [
        "min_samples_per_station_id"
    ]
    # completeness over the spec's required streams: drop audio from a third of samples
    df2 = stats.copy()
    df2.loc[df2.index % 3 == 0, "has__audio"] = False
    r2 = validate(catalog, samples, stats=df2)
    assert not by_name(r2)["completeness"].passed
    assert "camera+audio+vibration" in by_name(r2)["completeness"].expected  # notes optional
    assert not r2.passed
    # ...unless the config requires only the other streams
    r3 = validate(catalog, samples, ValidateConfig(required_streams=["camera"]), stats=df2)
    assert by_name(r3)["completeness"].passed


def test_unknown_stream_names_in_the_config_are_refused(clean):
    samples, catalog, stats = clean
    with pytest.raises(ValueError, match="required_streams: unknown \\['lidar'\\]"):
        validate(catalog, samples, ValidateConfig(required_streams=["lidar"]), stats=stats)
    with pytest.raises(ValueError, match="label_check_streams: unknown \\['lidar'\\]"):
        validate(catalog, samples, ValidateConfig(label_check_streams=["camera", "lidar"]))


def six_session_splits() -> pd.DataFrame:
    """s00-s05, one subject each: four in train, one in val, one in test (no leak)."""
    return pd.DataFrame(
        {
            "session_id": [f"s{i:02d}" for i in range(6)],
            "subject": [f"subj{i}" for i in range(6)],
            "split": ["train", "train", "train", "train", "val", "test"],
        }
    )


SPLIT_OF = dict(zip(six_session_splits()["session_id"], six_session_splits()["split"], strict=True))


def test_split_leaks_fail():
    splits = six_session_splits()
    ok = split_leak_checks(splits)
    assert all(c.passed for c in ok)
    leak = pd.concat(
        [splits, pd.DataFrame({"session_id": ["s00"], "subject": ["subj0"], "split": ["test"]})]
    )
    checks = {c.check: c for c in split_leak_checks(leak)}
    assert not checks["session_in_one_split"].passed
    assert "s00 in test+train" in checks["session_in_one_split"].details
    same_subject = splits.assign(subject=["p1", "p2", "p3", "p4", "p5", "p1"])
    checks = {c.check: c for c in split_leak_checks(same_subject)}
    assert checks["session_in_one_split"].passed and not checks["subject_in_one_split"].passed


def test_near_duplicate_frame_across_splits_fails(clean):
    samples, catalog, _ = clean
    cfg = ValidateConfig()
    clean_result = with_split_checks(validate(catalog, samples), SPLIT_OF, cfg)
    assert by_name(clean_result)["camera_near_duplicate_frames_across_splits"].passed
    dup = samples.copy()
    # A test-session frame re-encoded from a training frame: same scene, different bytes.
    src = np.asarray(Image.open(io.BytesIO(samples.at[3, "x__camera"])))
    buf = io.BytesIO()
    Image.fromarray(src).save(buf, format="JPEG", quality=60)
    target = dup.index[(dup["session_id"] == "s05") & (dup["window_index"] == 7)][0]
    dup.at[target, "x__camera"] = buf.getvalue()
    verdict = validate(catalog, dup)
    result = with_split_checks(verdict, SPLIT_OF, cfg)
    check = by_name(result)["camera_near_duplicate_frames_across_splits"]
    assert not check.passed and check.observed.startswith("1 of 50")
    assert "s05 (test)" in check.details
    # similar pictures only warn by default (a fixed camera films the same empty scene daily)
    assert check.severity == "warn" and result.passed
    # an override without the stream prefix applies to every stream
    strict = ValidateConfig(severity={"near_duplicate_frames_across_splits": "fail"})
    assert not with_split_checks(verdict, SPLIT_OF, strict).passed


def test_identical_frame_across_splits_fails_and_gate_splits_raises_after_writing(clean):
    samples, catalog, _ = clean
    cfg = ValidateConfig()
    seen = []
    ok = gate_splits(validate(catalog, samples), SPLIT_OF, cfg, on_verdict=seen.append)
    assert by_name(ok)["camera_identical_frames_across_splits"].passed
    assert seen == [ok] and ok.passed
    dup = samples.copy()
    target = dup.index[(dup["session_id"] == "s05") & (dup["window_index"] == 7)][0]
    dup.at[target, "x__camera"] = samples.at[3, "x__camera"]  # a copied training frame
    verdict = validate(catalog, dup)
    assert verdict.passed  # nothing is wrong before the split
    written = []
    with pytest.raises(ValidationGateError, match="camera_identical_frames_across_splits"):
        gate_splits(verdict, SPLIT_OF, cfg, on_verdict=written.append)
    (result,) = written  # the verdict reached the caller before the gate stopped
    check = by_name(result)["camera_identical_frames_across_splits"]
    assert not check.passed and "s05" in check.details and not result.passed
    # fail_on_error false: reported, not raised
    relaxed = gate_splits(verdict, SPLIT_OF, ValidateConfig(fail_on_error=False))
    assert not relaxed.passed


def test_catalog_suite_flags_bad_streams_and_counts_quarantine(clean):
    samples, catalog, stats = clean
    cat = catalog.copy()
    vib = cat.index[cat["stream"] == "vibration"]
    cat.loc[vib[0], "sample_rate"] = 50.0
    cat.loc[vib[1], "nan_fraction"] = 0.3
    audio = cat.index[cat["stream"] == "audio"]
    cat.loc[audio[1], ["status", "reason"]] = ["quarantined", "truncated WAV"]
    cat.loc[audio[2], ["status", "reason"]] = ["quarantined", None]
    st = stats.copy()
    for sid in ("s01", "s02"):
        st.loc[st["session_id"] == sid, "has__audio"] = False
    result = validate(cat, samples, ValidateConfig(min_completeness=0.0), stats=st)
    names = by_name(result)
    assert not names["catalog_vibration_rate"].passed
    assert names["catalog_vibration_rate"].severity == "warn"
    assert not names["catalog_vibration_nan_fraction"].passed
    assert not names["catalog_quarantine_reason"].passed
    assert names["catalog_quarantine_reason"].severity == "fail"
    assert names["catalog_columns"].passed and names["catalog_stream"].passed
    # 2 sessions × 25 samples lost their audio to quarantine: 50/150 bad.
    assert result.bad_fraction == pytest.approx(50 / 150)
    assert "50 with a quarantined stream" in names["bad_sample_fraction"].observed
    # a catalog row naming a stream the spec does not declare breaks the catalog
    odd = catalog.copy()
    odd.loc[0, "stream"] = "lidar"
    assert not by_name(validate(odd, samples, stats=stats))["catalog_stream"].passed


def test_quarantined_session_without_samples_counts_as_lost(clean):
    samples, catalog, stats = clean
    cat = catalog.copy()
    extra = cat[cat["session_id"] == "s00"].assign(
        session_id="s99", status="quarantined", reason="labels.csv: file is missing"
    )
    cat = pd.concat([cat, extra], ignore_index=True)
    result = validate(cat, samples, stats=stats)
    # 25 s session / 1 s windows = ~25 samples that never made it.
    assert result.bad_fraction == pytest.approx(25 / 175)
    assert not result.passed


def test_align_report_checks(clean):
    samples, catalog, stats = clean
    report = pd.DataFrame(
        {
            "session_id": ["s00", "s01"],
            "stream": ["audio", "vibration"],
            "method": ["estimate", "estimate"],
            "offset_s": [0.5, -1.0],
            "drift_ppm": [50.0, 9000.0],
            "confidence": [12.0, 1.5],
            "fallback_reason": [None, "low confidence"],
        }
    )
    result = validate(catalog, samples, align_report=report, stats=stats)
    names = by_name(result)
    assert not names["align_stream_confidence"].passed
    assert names["align_stream_confidence"].severity == "warn"
    assert "s01/vibration" in names["align_stream_confidence"].details
    assert not names["align_drift"].passed and not result.passed


def test_fail_on_error_false_reports_but_does_not_raise(clean):
    samples, catalog, _ = clean
    bad, _ = corrupt(samples, list(range(0, 150, 10)))
    result = validate(catalog, bad, ValidateConfig(fail_on_error=False))
    assert not result.passed
    raise_for_gate(result)
