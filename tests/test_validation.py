"""Validation gate: each check fails on a frame built to break it and passes on a clean one."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from modalops import schema
from modalops.config.validate import ValidateConfig
from modalops.quarantine import QUARANTINE_COLUMNS
from modalops.raw_layout import encode_wav
from modalops.validation import (
    ValidationGateError,
    phash,
    raise_for_gate,
    sample_stats,
    split_leak_checks,
    validate_dataset,
)
from modalops.validation.stats import hamming

LABEL_CYCLE = ("normal", "normal", "proximity", "fault", "near_miss")
SITES = ("plant-a", "plant-b")


# ---- tiny payload builders -------------------------------------------------------------------


def jpeg(
    seed: int, size: tuple[int, int] = (64, 64), flat: int | None = None, dark: bool = False
) -> bytes:
    rng = np.random.default_rng(seed)
    w, h = size
    if dark:  # textured (sharp) but almost black
        arr = rng.integers(0, 9, size=(h, w, 3), dtype=np.uint8)
    elif flat is not None:
        arr = np.full((h, w, 3), flat, dtype=np.uint8)
    else:
        # Smooth random blobs plus texture: a distinct perceptual hash per seed.
        coarse = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
        img = Image.fromarray(coarse).resize((w, h), Image.BILINEAR)
        arr = np.asarray(img).astype(np.int16) + rng.integers(-20, 20, size=(h, w, 3))
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def wav(seed: int, rate: int = 16000, seconds: float = 1.0, amp: float = 0.1) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_wav(rng.normal(0, amp, int(rate * seconds)), rate)


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr.astype(np.float32))
    return buf.getvalue()


def vibration(seed: int, rows: int = 100) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, size=(rows, 3)).astype(np.float32)


def make_samples(n_sessions: int = 6, windows: int = 25) -> pd.DataFrame:
    rows = []
    for s in range(n_sessions):
        sid = f"s{s:02d}"
        for w in range(windows):
            seed = s * 1000 + w
            rows.append(
                {
                    "session_id": sid,
                    "window_index": w,
                    "t_start": float(w),
                    "t_end": float(w + 1),
                    "label": LABEL_CYCLE[w % len(LABEL_CYCLE)],
                    "label_overlap": 1.0,
                    "boundary": False,
                    "has_camera": True,
                    "has_audio": True,
                    "has_vibration": True,
                    "has_notes": w % 5 == 0,
                    "camera_jpeg": jpeg(seed),
                    "audio_wav": wav(seed),
                    "vibration_npy": npy(vibration(seed)),
                    "notes_text": "guard checked, ok" if w % 5 == 0 else "",
                    "station_id": f"st{s % 3}",
                    "site": SITES[s % 2],
                    "camera_model": "cam-x",
                    "microphone": "mic-y",
                    "lighting": "day" if s % 3 else "night",
                    "subject": f"subj{s}",
                    "align_confidence": 8.0,
                }
            )
    return pd.DataFrame(rows)


def make_catalog(samples: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for sid in samples["session_id"].unique():
        for modality in (*schema.MODALITIES, "labels", "clock"):
            rate = {"audio": 16000.0, "vibration": 100.0, "camera": 4.0}.get(modality, np.nan)
            rows.append(
                {
                    "session_id": sid,
                    "modality": modality,
                    "key": f"sessions/{sid}/{modality}",
                    "uri": f"/raw/sessions/{sid}/{modality}",
                    "content_hash": "abc",
                    "n_bytes": 100,
                    "duration_s": 25.0,
                    "sample_rate": rate,
                    "n_items": 10,
                    "t_first": 0.0,
                    "t_last": 25.0,
                    "nan_fraction": 0.0,
                    "status": "ok",
                    "reason": None,
                    "station_id": "st0",
                    "site": "plant-a",
                    "camera_model": "cam-x",
                    "microphone": "mic-y",
                    "lighting": "day",
                    "subject": "subj",
                    "n_corrupt_frames": 0,
                }
            )
    return pd.DataFrame(rows)


def cfg(**kw) -> ValidateConfig:
    # Tiny tables: the default subgroup minimum (20) is met by 3 sessions × 25 windows.
    return ValidateConfig(**kw)


@pytest.fixture(scope="module")
def clean():
    samples = make_samples()
    return samples, make_catalog(samples), sample_stats(samples)


def by_name(result):
    return {c.check: c for c in result.checks}


# ---- stats --------------------------------------------------------------------------------


def test_sample_stats_of_clean_payloads(clean):
    samples, _, stats = clean
    assert len(stats) == len(samples)
    assert stats["image_decodable"].all() and stats["audio_decodable"].all()
    assert set(stats["image_width"]) == {64} and set(stats["audio_rate"]) == {16000}
    assert np.allclose(stats["audio_duration_s"], 1.0)
    assert np.allclose(stats["audio_rms"], 0.1, rtol=0.1)
    assert (stats["vib_rows"] == 100).all() and (stats["vib_flat_channels"] == 0).all()
    assert (stats["blur"] > 100).all()
    # Notes stats only where notes are present.
    assert stats.loc[~stats["has_notes"], "text_len"].isna().all()
    assert (stats.loc[stats["has_notes"], "text_len"] == len("guard checked, ok")).all()


def test_broken_payloads_are_flagged():
    samples = make_samples(1, 6)
    bad_audio = bytearray(wav(1))
    samples.at[0, "camera_jpeg"] = b"\xff\xd8\xff\xe0garbage-not-a-jpeg"
    samples.at[1, "audio_wav"] = bytes(bad_audio[: len(bad_audio) // 2])  # truncated
    samples.at[2, "audio_wav"] = wav(2, rate=8000)
    arr = vibration(3)
    arr[10:40, 0] = np.nan
    samples.at[3, "vibration_npy"] = npy(arr)
    arr = vibration(4)
    arr[:, 2] = -1.473  # not exactly representable: float32 rounding must not hide it
    samples.at[4, "vibration_npy"] = npy(arr)
    samples.at[5, "notes_text"] = "bad \ufffd decode"
    samples.at[5, "has_notes"] = True
    stats = sample_stats(samples)
    assert not stats["image_decodable"].iloc[0]
    assert not stats["audio_decodable"].iloc[1]
    assert stats["audio_rate"].iloc[2] == 8000
    assert stats["vib_nan_fraction"].iloc[3] == pytest.approx(30 / 300)
    assert stats["vib_flat_channels"].iloc[4] == 1
    assert not stats["text_valid_utf8"].iloc[5]


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
    result = validate_dataset(catalog, samples, cfg(), docs_dir=tmp_path / "docs", stats=stats)
    failing = [c for c in result.checks if not c.passed and c.severity == "fail"]
    assert result.passed, result.table_markdown()
    assert not failing
    assert result.rejected.empty and result.bad_fraction == 0.0
    assert (tmp_path / "docs" / "index.html").exists()
    names = by_name(result)
    assert names["drift"].observed == "skipped" and names["drift"].passed
    raise_for_gate(result)  # does not raise


def corrupt(samples: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    """One distinct defect per row (in order), each meant to break one expectation."""
    df = samples.copy()
    arr_nan = vibration(99)
    arr_nan[:50, 1] = np.nan
    arr_flat = vibration(98)
    arr_flat[:, 0] = 1.0
    defects = [
        ("camera_jpeg", b"not a jpeg at all", "image_decodable"),
        ("camera_jpeg", jpeg(5, size=(32, 32)), "image_width"),
        ("camera_jpeg", jpeg(6, dark=True), "image_brightness"),
        ("camera_jpeg", jpeg(7, flat=128), "image_blur"),
        ("audio_wav", wav(8)[:-6000], "audio_decodable"),
        ("audio_wav", wav(9, rate=22050), "audio_rate"),
        ("audio_wav", wav(10, seconds=0.5), "audio_duration"),
        ("audio_wav", wav(11, amp=0.5), "audio_clipping"),
        ("audio_wav", wav(12, amp=0.0), "audio_rms"),
        ("vibration_npy", npy(arr_nan), "vibration_nan_fraction"),
        ("vibration_npy", npy(arr_flat), "vibration_flat_channels"),
        ("vibration_npy", npy(vibration(13, rows=40)), "vibration_rate"),
        ("vibration_npy", npy(vibration(14) * 1000), "vibration_min"),
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
    result = validate_dataset(catalog, bad, cfg())
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
    # Quarantine rows follow the shared manifest.
    assert list(result.quarantine.columns) == list(QUARANTINE_COLUMNS)
    assert (result.quarantine["stage"] == "validate").all() and len(result.quarantine) == 15
    q = result.quarantine.set_index(["session_id", "window_index"])
    assert q.loc[("s00", 0), "modality"] == "camera"


def test_below_the_gate_passes_with_rejected_rows_listed(clean):
    samples, catalog, _ = clean
    bad, expected = corrupt(samples, [3, 77])  # 2 of 150 = 1.3%
    result = validate_dataset(catalog, bad, cfg())
    assert result.passed, result.table_markdown()
    assert len(result.rejected) == 2
    keys = zip(result.rejected["session_id"], result.rejected["window_index"], strict=True)
    assert set(keys) == set(expected)
    assert result.bad_fraction == pytest.approx(2 / 150)
    # The per-sample check failed for one row but within `mostly`: reported, not fatal.
    assert by_name(result)["image_decodable"].observed.startswith("1 of")


def test_severity_override_turns_a_failure_into_a_warning(clean):
    samples, catalog, _ = clean
    bad, _ = corrupt(samples, list(range(0, 150, 10)))
    assert not validate_dataset(catalog, bad, cfg()).passed
    result = validate_dataset(catalog, bad, cfg(severity={"bad_sample_fraction": "warn"}))
    assert result.passed
    check = by_name(result)["bad_sample_fraction"]
    assert check.severity == "warn" and not check.passed
    assert "warn" in result.table_markdown()
    # Exact names win over prefixes, longer prefixes over shorter ones.
    result = validate_dataset(
        catalog, bad, cfg(severity={"*": "warn", "image_*": "fail", "image_blur": "warn"})
    )
    sev = {c.check: c.severity for c in result.checks}
    assert sev["image_width"] == "fail" and sev["image_blur"] == "warn"
    assert sev["bad_sample_fraction"] == "warn" and result.passed


def test_dataset_checks_class_subgroup_completeness(clean):
    samples, catalog, stats = clean
    df = stats.copy()
    df.loc[df["label"] == "near_miss", "label"] = "normal"  # near_miss share → 0
    result = validate_dataset(catalog, samples, cfg(min_samples_per_subgroup=80), stats=df)
    names = by_name(result)
    assert (
        not names["min_class_fraction"].passed
        and "near_miss" in names["min_class_fraction"].observed
    )
    assert not names["min_samples_per_lighting"].passed  # night: 2 sessions × 25 = 50 < 80
    assert not names["min_samples_per_site"].passed  # 75 per site < 80
    assert names["min_samples_per_camera_model"].passed  # one model, 150 samples
    # completeness: drop audio from a third of samples
    df2 = stats.copy()
    df2.loc[df2.index % 3 == 0, "has_audio"] = False
    r2 = validate_dataset(catalog, samples, cfg(), stats=df2)
    assert not by_name(r2)["completeness"].passed
    assert not r2.passed


def six_session_splits() -> pd.DataFrame:
    """s00-s05, one subject each: four in train, one in val, one in test (no leak)."""
    return pd.DataFrame(
        {
            "session_id": [f"s{i:02d}" for i in range(6)],
            "subject": [f"subj{i}" for i in range(6)],
            "split": ["train", "train", "train", "train", "val", "test"],
        }
    )


def test_split_leaks_fail(clean):
    _, _, stats = clean
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
    splits = six_session_splits()
    clean_result = validate_dataset(catalog, samples, cfg(), splits=splits)
    assert by_name(clean_result)["near_duplicate_frames_across_splits"].passed
    dup = samples.copy()
    # A test-session frame re-encoded from a training frame: same scene, different bytes.
    src = np.asarray(Image.open(io.BytesIO(samples.at[3, "camera_jpeg"])))
    buf = io.BytesIO()
    Image.fromarray(src).save(buf, format="JPEG", quality=60)
    target = dup.index[(dup["session_id"] == "s05") & (dup["window_index"] == 7)][0]
    dup.at[target, "camera_jpeg"] = buf.getvalue()
    result = validate_dataset(catalog, dup, cfg(), splits=splits)
    check = by_name(result)["near_duplicate_frames_across_splits"]
    assert not check.passed and check.observed.startswith("1 of 50")
    assert "s05 (test)" in check.details
    # similar pictures only warn by default (a fixed camera films the same empty scene daily)
    assert check.severity == "warn" and result.passed
    strict = validate_dataset(
        catalog, dup, cfg(severity={"near_duplicate_frames_across_splits": "fail"}), splits=splits
    )
    assert not strict.passed


def test_identical_frame_across_splits_fails(clean):
    samples, catalog, _ = clean
    splits = six_session_splits()
    assert by_name(validate_dataset(catalog, samples, cfg(), splits=splits))[
        "identical_frames_across_splits"
    ].passed
    dup = samples.copy()
    target = dup.index[(dup["session_id"] == "s05") & (dup["window_index"] == 7)][0]
    dup.at[target, "camera_jpeg"] = samples.at[3, "camera_jpeg"]  # a copied training frame
    result = validate_dataset(catalog, dup, cfg(), splits=splits)
    check = by_name(result)["identical_frames_across_splits"]
    assert not check.passed and "s05" in check.details
    assert not result.passed


def test_catalog_suite_flags_bad_streams_and_counts_quarantine(clean):
    samples, catalog, stats = clean
    cat = catalog.copy()
    audio = cat.index[(cat["modality"] == "audio")]
    cat.loc[audio[0], "sample_rate"] = 8000.0
    cat.loc[audio[1], ["status", "reason"]] = ["quarantined", "truncated WAV"]
    cat.loc[audio[2], ["status", "reason"]] = ["quarantined", None]
    st = stats.copy()
    for sid in ("s01", "s02"):
        st.loc[st["session_id"] == sid, "has_audio"] = False
    result = validate_dataset(cat, samples, cfg(min_completeness=0.0), stats=st)
    names = by_name(result)
    assert not names["catalog_audio_rate"].passed and names["catalog_audio_rate"].severity == "warn"
    assert not names["catalog_quarantine_reason"].passed
    assert names["catalog_quarantine_reason"].severity == "fail"
    # 2 sessions × 25 samples lost their audio to quarantine: 50/150 bad.
    assert result.bad_fraction == pytest.approx(50 / 150)
    assert "50 with a quarantined stream" in names["bad_sample_fraction"].observed


def test_quarantined_session_without_samples_counts_as_lost(clean):
    samples, catalog, stats = clean
    cat = catalog.copy()
    extra = cat[cat["session_id"] == "s00"].assign(
        session_id="s99", status="quarantined", reason="labels.csv: file is missing"
    )
    cat = pd.concat([cat, extra], ignore_index=True)
    result = validate_dataset(cat, samples, cfg(), stats=stats)
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
    result = validate_dataset(catalog, samples, cfg(), align_report=report, stats=stats)
    names = by_name(result)
    assert not names["align_stream_confidence"].passed
    assert names["align_stream_confidence"].severity == "warn"
    assert "s01/vibration" in names["align_stream_confidence"].details
    assert not names["align_drift"].passed and not result.passed


def test_fail_on_error_false_reports_but_does_not_raise(clean):
    samples, catalog, _ = clean
    bad, _ = corrupt(samples, list(range(0, 150, 10)))
    result = validate_dataset(catalog, bad, cfg(fail_on_error=False))
    assert not result.passed
    raise_for_gate(result)
