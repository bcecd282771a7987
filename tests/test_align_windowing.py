"""Property tests (hypothesis) on windowing: bounds, the label-overlap rule, presence masks."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from modalops.align import align_session
from modalops.align.windowing import label_windows, window_bounds
from modalops.config.align import AlignConfig
from modalops.dataset.layout import ClockModel, SessionStreams
from modalops.dataset.spec import parse_spec
from modalops.kinds.image.read import ImageStream
from modalops.kinds.timeseries.read import TimeseriesStream
from modalops.kinds.timing import nearest_index
from modalops.testing.recordings import CLASSES, synthetic_spec

LABELS = CLASSES
SPEC = parse_spec(synthetic_spec())
SETTINGS = settings(max_examples=40, deadline=None)


@SETTINGS
@given(
    start=st.floats(-50, 50),
    length=st.floats(0, 200),
    window=st.floats(0.1, 5),
    hop_ratio=st.floats(0.1, 3),
)
def test_windows_never_leave_the_session(start, length, window, hop_ratio):
    hop = window * hop_ratio
    starts, ends = window_bounds(start, start + length, window, hop)
    assert (starts >= start - 1e-9).all() and (ends <= start + length + 1e-9).all()
    # Maximal: one more hop would cross the end of the session.
    next_end = (starts[-1] + hop if starts.size else start) + window
    assert next_end > start + length - 1e-6


@st.composite
def label_table(draw):
    n = draw(st.integers(1, 12))
    lengths = draw(st.lists(st.floats(0.2, 6), min_size=n, max_size=n))
    gaps = draw(st.lists(st.sampled_from([0.0, 0.0, 0.7]), min_size=n, max_size=n))
    names = draw(st.lists(st.sampled_from(LABELS), min_size=n, max_size=n))
    t, rows = 0.0, []
    for length, gap, name in zip(lengths, gaps, names, strict=True):
        t += gap
        rows.append((t, t + length, name))
        t += length
    return pd.DataFrame(rows, columns=["start_s", "end_s", "label"])


@SETTINGS
@given(
    labels=label_table(),
    window=st.floats(0.3, 3),
    hop=st.floats(0.2, 3),
    min_overlap=st.floats(0.2, 1.0),
)
def test_overlap_rule_holds_for_every_window(labels, window, hop, min_overlap):
    starts, ends = window_bounds(0.0, float(labels["end_s"].max()), window, hop)
    label, overlap, boundary, unlabelled = label_windows(starts, ends, labels, min_overlap)
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        cover = {}
        for row in labels.itertuples():  # brute force, one interval at a time
            cover[row.label] = cover.get(row.label, 0.0) + max(
                0.0, min(b, row.end_s) - max(a, row.start_s)
            )
        frac = {k: v / (b - a) for k, v in cover.items()}
        reaching = [k for k, f in frac.items() if f >= min_overlap - 1e-9]
        if label[i] is not None:
            assert reaching == [label[i]]
            assert abs(overlap[i] - frac[label[i]]) < 1e-5
            assert not boundary[i] and not unlabelled[i]
        else:
            assert unlabelled[i] == (sum(frac.values()) <= 1e-12)
            assert boundary[i] == (not unlabelled[i])
            assert len(reaching) != 1


@SETTINGS
@given(
    times=st.lists(st.floats(0, 1000), min_size=1, max_size=50, unique=True),
    queries=st.lists(st.floats(-10, 1010), min_size=1, max_size=50),
    tol=st.floats(0.01, 50),
)
def test_nearest_index_matches_merge_asof(times, queries, tol):
    t = np.sort(np.array(times))
    q = np.array(queries)
    got = nearest_index(t, q, tol)
    order = np.argsort(q, kind="stable")
    left = pd.DataFrame({"q": q[order]})
    right = pd.DataFrame({"t": t, "i": np.arange(t.size)})
    ref = pd.merge_asof(left, right, left_on="q", right_on="t", direction="nearest", tolerance=tol)
    expected = np.empty(q.size)
    expected[order] = ref["i"].fillna(-1).to_numpy()
    # Ties between two neighbours may go either way; the chosen one must be as near.
    dist_got = np.where(got >= 0, np.abs(t[np.maximum(got, 0)] - q), np.inf)
    dist_exp = np.where(expected >= 0, np.abs(t[np.maximum(expected, 0).astype(int)] - q), np.inf)
    np.testing.assert_array_equal(got >= 0, expected >= 0)
    np.testing.assert_allclose(dist_got[got >= 0], dist_exp[got >= 0])


@SETTINGS
@given(
    cam_gap=st.tuples(st.floats(0, 28), st.floats(0, 6)),
    vib_gap=st.tuples(st.floats(0, 28), st.floats(0, 6)),
    window=st.sampled_from([0.5, 1.0, 2.0]),
    hop=st.sampled_from([0.5, 1.0]),
    offset=st.floats(-3, 3),
)
def test_presence_masks_match_injected_gaps(cam_gap, vib_gap, window, hop, offset):
    duration, fps, rate = 30.0, 4.0, 100.0
    t_cam = np.arange(int(duration * fps)) / fps
    cam_keep = ~((t_cam >= cam_gap[0]) & (t_cam < cam_gap[0] + cam_gap[1]))
    cam_keep[0] = True  # the reference must start at 0 for the expected windows below
    t_cam = t_cam[cam_keep]
    t_vib = offset + np.arange(int(duration * rate)) / rate  # device clock, known offset
    vib_keep = ~((t_vib - offset >= vib_gap[0]) & (t_vib - offset < vib_gap[0] + vib_gap[1]))
    session = SessionStreams(
        "s",
        {},
        {"imu": ClockModel(offset, 0.0)},
        pd.DataFrame({"start_s": [0.0], "end_s": [duration + 1], "label": [LABELS[0]]}),
        streams={
            "front": ImageStream(t_cam, [f"f{i}" for i in range(t_cam.size)]),
            "imu": TimeseriesStream(
                t_vib[vib_keep], np.zeros((int(vib_keep.sum()), 3), np.float32)
            ),
            "mic": None,
            "log": None,
        },
    )
    cfg = AlignConfig(mode="metadata", window_s=window, hop_s=hop)
    out = align_session(session, SPEC, cfg, read_bytes=lambda key: b"\xff\xd8" + key.encode())
    df = out.samples
    assert (df["t_start"] >= 0).all() and (df["t_end"] <= t_cam[-1] + 0.25 + 1e-9).all()
    assert not df["has__mic"].any() and not df["has__log"].any()
    vib_ref = t_vib[vib_keep] - offset
    for row in df.itertuples():
        centre = 0.5 * (row.t_start + row.t_end)
        nearest = np.min(np.abs(t_cam - centre))
        assert row.has__front == (nearest <= 1.5 / fps + 1e-9)
        n_rows = np.sum((vib_ref >= row.t_start - 1e-9) & (vib_ref < row.t_end - 1e-9))
        expected = n_rows >= 0.5 * window * rate
        # Rows exactly on a window edge may fall either side of float rounding; allow one.
        if abs(n_rows - 0.5 * window * rate) > 1:
            assert row.has__imu == expected, (row, n_rows)
