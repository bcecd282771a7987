"""Label-consistency check: wrong labels on signals that contradict them are flagged, clean ones kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from modalops.config.validate import ValidateConfig
from modalops.kinds.audio.wav import encode_wav
from modalops.kinds.image.stats import THUMB
from modalops.kinds.timeseries.window import npy_bytes
from modalops.kinds.video.window import encode_jpeg
from modalops.testing.samples import make_catalog
from modalops.validate import label_check, validate_dataset
from modalops_demo.names import demo_spec

SPEC = demo_spec()
LABELS = SPEC.labels.classes
LABEL_INDEX = SPEC.labels.index()

N_SESSIONS, WINDOWS = 12, 40


# ---- a tiny dataset whose labels follow its signals -----------------------------------------
# An object in view (a bright patch whose place and colour vary) ↔ proximity; a tone in the audio
# and a wobble on one vibration axis ↔ fault; both ↔ near_miss. Each session has its own
# background, noise floor and sensor mounting, as recordings do.


def window_payloads(rng: np.random.Generator, background: np.ndarray, label: str, axis: int):
    person = label in ("proximity", "near_miss")
    fault = label in ("fault", "near_miss")
    frame = background.astype(np.int16) + rng.integers(-6, 7, size=background.shape)
    if person:
        r, c = rng.integers(20, 36), rng.integers(20, 36)
        frame[r : r + 16, c : c + 10] = rng.integers(0, 256, size=3)
    t = np.arange(16000) / 16000
    audio = rng.normal(0, 0.02, t.size) + (0.2 * np.sin(2 * np.pi * 2200 * t) if fault else 0)
    tv = np.arange(100) / 100
    vib = rng.normal(0, 0.05, (100, 3)) + np.sin(2 * np.pi * 25 * tv)[:, None]
    if fault:
        vib[:, axis] += 0.8 * np.sin(2 * np.pi * 7 * tv + rng.uniform(0, 6))
    cam = encode_jpeg(np.clip(frame, 0, 255).astype(np.uint8), quality=90)
    return cam, encode_wav(audio, 16000), npy_bytes(vib)


def make_samples(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(N_SESSIONS):
        sid = f"s{s:02d}"
        background = np.asarray(
            Image.fromarray(rng.integers(40, 200, (4, 4, 3), dtype=np.uint8)).resize((64, 64))
        )
        axis = s % 3
        # runs of 2-5 windows per label, like label intervals
        labels: list[str] = []
        while len(labels) < WINDOWS:
            labels += [str(rng.choice(LABELS))] * int(rng.integers(2, 6))
        for w, label in enumerate(labels[:WINDOWS]):
            cam, aud, vib = window_payloads(rng, background, label, axis)
            rows.append(
                {
                    "session_id": sid,
                    "window_index": w,
                    "t_start": float(w),
                    "t_end": float(w + 1),
                    "label": label,
                    "label_overlap": 1.0,
                    "boundary": False,
                    "has__camera": True,
                    "has__audio": True,
                    "has__vibration": True,
                    "has__notes": False,
                    "x__camera": cam,
                    "x__audio": aud,
                    "x__vibration": vib,
                    "x__notes": "",
                    "station_id": f"st{s % 3}",
                    "site": ("plant-a", "plant-b")[s % 2],
                    "camera_model": "cam-x",
                    "microphone": "mic-y",
                    "lighting": "day",
                    "subject": f"subj{s}",
                    "align_confidence": 8.0,
                }
            )
    return pd.DataFrame(rows)


def swap_labels(samples: pd.DataFrame, n: int, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """Swap the label of `n` random windows for another class; returns (samples, wrong mask)."""
    rng = np.random.default_rng(seed)
    out = samples.copy()
    rows = rng.choice(len(out), size=n, replace=False)
    for i in rows:
        others = [x for x in LABELS if x != out.at[i, "label"]]
        out.at[i, "label"] = others[int(rng.integers(0, len(others)))]
    wrong = np.zeros(len(out), dtype=bool)
    wrong[rows] = True
    return out, wrong


ON = ValidateConfig(label_check=True, label_check_min_windows=0)  # the tiny set has 480


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return make_samples()


# ---- features ------------------------------------------------------------------------------------


def test_features_are_finite_and_mark_missing_or_broken_payloads(clean):
    samples = clean.head(40).copy()
    samples.loc[3, "x__camera"] = b"not a jpeg"
    samples.loc[4, "x__audio"] = None
    samples.loc[5, "x__notes"] = "bearing noise at press 3"
    samples.loc[5, "has__notes"] = True
    feats = label_features_by_modality(samples)
    for modality, block in feats.items():
        assert np.isfinite(block).all(), modality
    # the presence flag is the last column of each modality's block
    assert feats["camera"][3, -1] == 0 and feats["camera"][2, -1] == 1
    assert not feats["camera"][3, :-1].any()
    assert feats["audio"][4, -1] == 0 and not feats["audio"][4, :-1].any()
    assert feats["notes"][5, -1] == 1 and feats["notes"][5, :-1].sum() == 5  # five tokens
    assert feats["notes"][6, -1] == 0


def label_features_by_modality(samples: pd.DataFrame) -> dict[str, np.ndarray]:
    return {m: label_check.label_features(samples, SPEC, [m]) for m in SPEC.stream_names}


def test_camera_change_map_finds_the_object_on_any_background(clean):
    """Distance from the session's median frame: one threshold separates frames with the object
    from frames without it across sessions with different backgrounds."""
    change = label_check.label_features(clean, SPEC, ["camera"])[:, : THUMB**2]
    strongest = change.max(axis=1)
    person = clean["label"].isin(["proximity", "near_miss"]).to_numpy()
    assert strongest[person].min() > 2 * strongest[~person].max()


# ---- confident learning ----------------------------------------------------------------------


def test_a_weak_classifier_does_not_flag_clean_labels():
    """Features that barely predict the labels: cleanlab finds many issues (the classifier
    disagrees with correct labels), but it is sure of none, so nothing is flagged and the noise
    rate the gate reads is 0 (issue 22: 15% of a clean spoken-digit set was flagged)."""
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(12), 60).astype(str)
    labels = rng.integers(0, 4, len(groups))
    features = np.eye(4)[labels] * 0.3 + rng.normal(0, 1.0, (len(groups), 4))
    verdict = label_check.judge_labels(features, labels, groups, 4, ValidateConfig())
    assert verdict.oof_accuracy < 0.6  # weak by construction
    assert verdict.issues.sum() > 0.1 * len(labels)  # raw disagreement is large
    assert verdict.flagged.sum() == 0 and verdict.sure_noise_rate == 0.0


def test_a_strong_classifier_finds_swaps_and_estimates_their_rate():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(12), 60).astype(str)
    truth = rng.integers(0, 4, len(groups))
    features = np.eye(4)[truth] * 3.0 + rng.normal(0, 0.5, (len(groups), 4))
    noisy = truth.copy()
    swapped = rng.choice(len(truth), 72, replace=False)  # 10%
    noisy[swapped] = (truth[swapped] + rng.integers(1, 4, 72)) % 4
    verdict = label_check.judge_labels(features, noisy, groups, 4, ValidateConfig())
    wrong = noisy != truth
    # recall 59 of 72 measured (C = 0.1 keeps 18% of windows below p 0.85); margin 5 windows
    assert (verdict.flagged & wrong).sum() >= 0.75 * wrong.sum()
    assert (verdict.flagged & ~wrong).sum() <= 0.01 * (~wrong).sum()  # false flags
    assert 0.08 <= verdict.sure_noise_rate <= 0.12  # 10% injected
    assert (verdict.suggested[wrong] == truth[wrong]).mean() >= 0.9


def test_folds_never_train_on_the_judged_session():
    """A feature that only identifies the session predicts nothing out of fold."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(10), 20)
    labels = np.repeat(rng.integers(0, 4, 10), 20)  # one label per session
    features = np.eye(10)[groups] + rng.normal(0, 0.01, (200, 10))
    probs, folds = label_check.out_of_fold_probs(features, labels, groups.astype(str), 4, 5)
    assert folds == 5
    assert probs[np.arange(200), labels].mean() < 0.5  # in-sample it would be near 1


def test_check_flags_swapped_labels_and_keeps_clean_ones(clean):
    on_clean = label_check.check_labels(clean, SPEC)
    assert on_clean.folds == 5
    assert on_clean.flagged.sum() <= 2  # ≤ 0.5% of 480 windows
    noisy, wrong = swap_labels(clean, 40)
    result = label_check.check_labels(noisy, SPEC)
    hits = int((result.flagged & wrong).sum())
    # conservative by design (a flag needs another class predicted with p >= 0.85): on this
    # tiny set (linear model, 400 training windows) over half the swaps are caught, and nearly
    # every flag is a swap
    assert hits >= 20, f"recall {hits}/40"
    assert hits >= 0.9 * result.flagged.sum(), f"precision {hits}/{result.flagged.sum()}"
    # the suggestion for a flagged window is its true label
    true = clean["label"].map(LABEL_INDEX).to_numpy()
    both = result.flagged & wrong
    assert (result.suggested[both] == true[both]).mean() >= 0.9
    # a second round (retrained without round one's flags) flags fewer clean windows
    one_round = label_check.check_labels(noisy, SPEC, ValidateConfig(label_check_rounds=1))
    assert (one_round.flagged & ~wrong).sum() >= (result.flagged & ~wrong).sum()


def test_capped_fits_train_on_a_fixed_subsample_and_still_flag(clean, monkeypatch):
    """label_check_max_fit_windows: each fold's model fits on at most the cap, the same rows on a
    rerun, every window is still judged, and the swaps are still found."""
    from sklearn.linear_model import LogisticRegression

    fitted: list[int] = []
    fit = LogisticRegression.fit

    def counting_fit(self, x, y, *args, **kwargs):
        fitted.append(len(x))
        return fit(self, x, y, *args, **kwargs)

    monkeypatch.setattr(LogisticRegression, "fit", counting_fit)
    noisy, wrong = swap_labels(clean, 40)
    full = label_check.check_labels(noisy, SPEC)
    assert max(fitted) > 300  # ~384 training windows per fold uncapped
    fitted.clear()
    capped = label_check.check_labels(noisy, SPEC, ValidateConfig(label_check_max_fit_windows=300))
    assert len(fitted) == 10 and max(fitted) == 300  # 2 rounds x 5 folds
    assert not np.isnan(capped.probs).any()  # every window judged
    hits = int((capped.flagged & wrong).sum())
    assert hits >= 15, f"recall {hits}/40 (uncapped {int((full.flagged & wrong).sum())})"
    assert hits >= 0.8 * capped.flagged.sum()
    again = label_check.check_labels(noisy, SPEC, ValidateConfig(label_check_max_fit_windows=300))
    np.testing.assert_array_equal(again.probs, capped.probs)


def test_unlabelled_windows_are_not_judged(clean):
    samples = clean.copy()
    samples.loc[:9, "label"] = None
    samples.loc[10, "label"] = "smoke"
    result = label_check.check_labels(samples, SPEC)
    assert (result.given[:11] == -1).all()
    assert not result.flagged[:11].any()
    assert np.isnan(result.probs[:11]).all()
    assert np.isnan(result.self_confidence()[:11]).all()


def test_too_few_sessions_skip_the_check(clean):
    result = label_check.check_labels(clean[clean["session_id"] == "s00"], SPEC)
    assert result.folds == 0 and not result.flagged.any()


# ---- in the gate -----------------------------------------------------------------------------


def test_gate_rejects_flagged_windows_with_their_reason(clean):
    noisy, wrong = swap_labels(clean, 40)
    catalog = make_catalog(noisy, SPEC)
    assert ValidateConfig().label_check  # on by default (skipped below min_windows)
    off = validate_dataset(SPEC, catalog, noisy, ValidateConfig(label_check=False))
    assert "label_consistency" not in {c.check for c in off.checks}
    assert off.rejected.empty

    cfg = ValidateConfig(label_check=True, label_check_min_windows=0, max_bad_fraction=0.03)
    result = validate_dataset(SPEC, catalog, noisy, cfg)
    row = next(c for c in result.checks if c.check == "label_consistency")
    n = len(result.rejected)
    assert n >= 20
    assert f"; {n} of {len(noisy)} flagged" in row.observed
    # the gate reads the estimated noise (sure issues where the classifier is sure): 40 swaps
    # in 480 windows are 8.3%; > 3% fails
    noise = float(row.observed.removeprefix("estimated noise ").split("%")[0]) / 100
    assert 0.03 < noise < 0.15, row.observed
    assert not row.passed and row.severity == "fail"
    assert (
        result.rejected["reason"]
        .str.match(
            r"label_inconsistent: given (normal|proximity|fault|near_miss), out-of-fold p=0\.\d{3}"
        )
        .all()
    )
    assert (result.quarantine["stage"] == "validate").all()
    assert (result.quarantine["stream"] == "labels").all()
    assert len(result.quarantine) == n
    assert result.bad_fraction == pytest.approx(n / len(noisy))
    assert not result.passed
    keys = set(zip(result.rejected["session_id"], result.rejected["window_index"], strict=True))
    wrong_keys = set(zip(noisy["session_id"][wrong], noisy["window_index"][wrong], strict=True))
    assert len(keys & wrong_keys) >= 0.9 * n
    assert "fits capped" not in row.details  # 480 windows, below the default cap
    capped = cfg.model_copy(update={"label_check_max_fit_windows": 300})
    row = next(
        c for c in validate_dataset(SPEC, catalog, noisy, capped).checks
        if c.check == "label_consistency"
    )  # fmt: skip
    assert "fits capped at 300 windows a fold" in row.details

    # a warning only: the flagged windows are still rejected and counted
    warn = cfg.model_copy(update={"severity": {"label_consistency": "warn"}})
    relaxed = validate_dataset(SPEC, catalog, noisy, warn)
    assert len(relaxed.rejected) == n
    assert [c.check for c in relaxed.failures] == ["bad_sample_fraction"]


def test_gate_skips_windows_already_rejected(clean):
    samples = clean.copy()
    samples.loc[0, "x__audio"] = b"RIFF broken"
    result = validate_dataset(SPEC, make_catalog(samples, SPEC), samples, ON)
    first = result.rejected[
        (result.rejected["session_id"] == "s00") & (result.rejected["window_index"] == 0)
    ]
    assert len(first) == 1 and "audio_decodable" in first["reason"].iloc[0]
    row = next(c for c in result.checks if c.check == "label_consistency")
    assert f"of {len(samples) - 1} flagged" in row.observed
    assert row.passed


def test_label_check_streams_default_to_every_stream_and_may_be_chosen(clean):
    every = label_check.label_check_streams(SPEC, ValidateConfig())
    assert every == SPEC.stream_names
    one = ValidateConfig(label_check_streams=["vibration"])
    assert label_check.label_check_streams(SPEC, one) == ["vibration"]
    with pytest.raises(ValueError, match="label_check_streams: empty"):
        ValidateConfig(label_check_streams=[])
    # the features of one stream alone: its blocks and its presence flag
    feats = label_check.label_features(clean.head(40), SPEC, ["vibration"])
    assert feats.shape == (40, 2 * 51 + 1)


def test_gate_skips_the_check_on_too_few_windows(clean):
    result = validate_dataset(
        SPEC, make_catalog(clean, SPEC), clean, ValidateConfig(label_check=True)
    )
    row = next(c for c in result.checks if c.check == "label_consistency")
    assert row.passed and row.observed.startswith("skipped: 480 labelled windows < ")
    assert result.rejected.empty


def test_gate_over_parts_a_part_at_a_time_equals_the_gate_over_all_samples(clean, tmp_path):
    """The pipeline gathers statistics and label features a part at a time (no payload kept);
    the verdict, rejections and label flags are those of the gate over the whole table, also
    when a session's windows are split over two parts."""
    from modalops.runs import put_frame
    from modalops.store import open_store
    from modalops.validate import evidence_from_parts, merge_evidence
    from modalops.validate.evidence import parts_window_length

    noisy, _ = swap_labels(clean, 40)
    noisy.loc[5, "x__audio"] = b"RIFF broken"  # rejected by a rule, so left out of the check
    catalog = make_catalog(noisy, SPEC)
    cfg = ValidateConfig(label_check=True, label_check_min_windows=0, max_bad_fraction=0.03)
    whole = validate_dataset(SPEC, catalog, noisy, cfg)

    store = open_store(str(tmp_path / "store"))
    cuts = [0, 100, 230, len(noisy)]  # 100 and 230: inside sessions s02 and s05
    keys = []
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        keys.append(f"aligned/part-{i:05d}.parquet")
        put_frame(store, keys[-1], noisy.iloc[a:b].reset_index(drop=True))
    evidence = evidence_from_parts(store, keys, SPEC, cfg)
    assert len(evidence.stats) == len(noisy) and list(evidence.label_features) == SPEC.stream_names
    assert not any(isinstance(v, bytes) for v in evidence.stats.iloc[0])  # payloads not kept
    streamed = validate_dataset(SPEC, catalog, None, cfg, evidence=evidence)

    assert len(whole.rejected) >= 20  # the label check flagged windows: it is compared too
    pd.testing.assert_frame_equal(streamed.rejected, whole.rejected)
    assert [(c.check, c.passed, c.observed, c.details) for c in streamed.checks] == [
        (c.check, c.passed, c.observed, c.details) for c in whole.checks
    ]
    assert streamed.bad_fraction == whole.bad_fraction
    pd.testing.assert_frame_equal(streamed.stats, whole.stats)

    # batches gathered apart (Dask workers) merge into the same evidence
    window_s = parts_window_length(store, keys)  # the whole dataset's, given to each batch
    apart = merge_evidence(
        [evidence_from_parts(store, [k], SPEC, cfg, window_s=window_s) for k in keys]
    )
    pd.testing.assert_frame_equal(apart.stats, evidence.stats)
    with pytest.raises(ValueError, match="no aligned samples"):
        evidence_from_parts(store, [], SPEC, cfg)
    with pytest.raises(ValueError, match="no raw features were gathered"):
        off = evidence_from_parts(store, keys, SPEC, cfg.model_copy(update={"label_check": False}))
        validate_dataset(SPEC, catalog, None, cfg, evidence=off)
