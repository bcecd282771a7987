"""What a reviewer sees in Label Studio 1.23.2, in a real browser (headless Debian chromium): the
Review tab's columns, a demo window's audio with its waveform, its series over the whole window.

Windows are cut from freshly generated demo recordings by the real ingest and align stages; the
model's answer is made up (no training here: tests/test_ui.py runs the whole batch). Screenshots go
to the test's tmp folder and, with MODALOPS_UPDATE_SCREENSHOTS=1, to docs/screenshots/
(docs/review.md shows them).
"""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modalops.dataset.spec import DatasetSpec, load_spec_file
from modalops.review.client import VIEW_COLUMNS, ReviewClient
from modalops.review.labeling import stream_key
from modalops.review.tasks import build_tasks
from tests.test_ui import (  # noqa: F401 (page and shots are fixtures)
    page,
    shots,
    sign_in_label_studio,
    ui_step,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Rows of the audio canvas below its timeline that the waveform fills a fifth of: measured 17 on
# a demo window, 0 with decoder="none" (no waveform), 1-2 for silence (a flat line)
MIN_WAVEFORM_ROWS = 6
WAVEFORM_ROWS_JS = """(el) => {
  const c = el.querySelector('canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const drawn = [];
  for (let y = 0; y < c.height; y++) {
    let n = 0;
    for (let x = 0; x < c.width; x++) if (d[(y * c.width + x) * 4 + 3] > 0) n++;
    drawn.push(n);
  }
  let y = 0;
  while (y < drawn.length && drawn[y] === c.width) y++;  // the timeline's band
  return drawn.slice(y).filter((n) => n > c.width / 5).length;
}"""


def _rms(wav_bytes: bytes | None) -> float:
    if wav_bytes is None:
        return 0.0
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


def demo_review_items(root: Path) -> tuple[DatasetSpec, pd.DataFrame]:
    """Four windows of two demo sessions (one per true class where it can), as batch
    inference routes them, with a made-up model answer and reasons."""
    import modalops.align.dataset as align_mod
    from modalops.config.align import AlignConfig
    from modalops.store import open_store
    from modalops.testing.fuzz import align_inputs, ingest
    from modalops_demo.generate import DemoDataConfig, generate_demo_data

    raw, out = open_store(str(root / "raw")), open_store(str(root / "aligned"))
    generate_demo_data(raw, DemoDataConfig(sessions=2, duration_s=20.0, seed=3, corrupt={}))
    spec = load_spec_file(root / "raw" / "dataset.yaml")
    catalog, quarantine = align_inputs(spec, ingest(raw, spec))
    aligned = align_mod.align_dataset(raw, spec, catalog, AlignConfig(), out, "ui", quarantine)
    windows = pd.concat(
        [pd.read_parquet(io.BytesIO(out.get_bytes(k))) for k in aligned.part_keys],
        ignore_index=True,
    )
    # the loudest window of each class first: a quiet one draws a waveform as flat as silence
    audio = next(s for s in spec.stream_names if spec.kind_of(s).name == "audio")
    windows["rms"] = [_rms(b) for b in windows[f"x__{audio}"]]
    loudest = windows.sort_values("rms", ascending=False, kind="stable")
    picked = loudest.groupby("label", sort=False).head(1).head(4).reset_index(drop=True)
    classes = spec.labels.classes
    picked["label"] = [classes[(classes.index(c) + i % 2) % len(classes)]
                       for i, c in enumerate(picked["label"])]  # fmt: skip
    picked["probability"] = [0.41, 0.55, 0.38, 0.62][: len(picked)]
    picked["reasons"] = ["low confidence", "low confidence; abstained", "low confidence",
                         "camera drift"][: len(picked)]  # fmt: skip
    picked["model_name"], picked["model_version"] = "fusion", 3
    picked["spec_digest"] = spec.digest()
    return spec, picked


def test_a_reviewer_sees_the_window(label_studio, page, shots, tmp_path):  # noqa: F811
    spec, items = demo_review_items(tmp_path)
    client = ReviewClient(label_studio["url"], label_studio["token"], "demo")
    project = client.ensure_project(spec, "fusion")
    client.import_tasks(project, build_tasks(spec, items))
    tasks = client._tasks(project)
    url = label_studio["url"]
    audio = next(s for s in spec.stream_names if spec.kind_of(s).name == "audio")
    series = next(s for s in spec.stream_names if spec.kind_of(s).name == "timeseries")
    page.set_viewport_size({"width": 1280, "height": 900})

    with ui_step("sign in", page, shots):
        sign_in_label_studio(page, label_studio)

    with ui_step("data manager", page, shots):
        page.goto(f"{url}/projects/{project}/data")
        page.get_by_text(str(items.at[0, "session_id"])).first.wait_for()
        page.get_by_text("Review", exact=True).first.wait_for()  # the tab modalops made
        headers = " ".join(page.locator(".lsf-th").all_inner_texts())
        for column in VIEW_COLUMNS:
            if column.startswith("tasks:data."):
                assert column.removeprefix("tasks:data.") in headers, headers
        for internal in ("modalops_key", "spec_digest", "_title", "modalops_header", "stream_"):
            assert internal not in headers, headers
        shots.take(page, "review-01-data-manager")

    with ui_step("audio waveform", page, shots):
        page.goto(f"{url}/projects/{project}/data?task={tasks[0]['id']}")
        heading = page.get_by_text(f"{audio} (audio)", exact=True).first
        heading.wait_for()
        tag = page.locator(".lsf-audio-tag").first
        page.get_by_test_id("timebox-end-time").first.wait_for()
        # decoding runs after the page settles: wait for the waveform, not a fixed time
        page.wait_for_function(
            f"() => ({WAVEFORM_ROWS_JS})(document.querySelector('.lsf-audio-tag')) >= "
            f"{MIN_WAVEFORM_ROWS}",
            timeout=60_000,
        )
        rows = tag.evaluate(WAVEFORM_ROWS_JS)
        assert rows >= MIN_WAVEFORM_ROWS, f"waveform fills {rows} rows of the audio canvas"
        page.get_by_text("Window under review").first.evaluate(
            "e => e.scrollIntoView({block: 'start'})"
        )
        shots.take(page, "review-02-task-waveform")

    with ui_step("series over the whole window", page, shots):
        page.get_by_text(f"{series} (timeseries)", exact=True).first.evaluate(
            "e => e.scrollIntoView({block: 'start'})"
        )
        ticks = page.locator(".htx-timeseries svg g.xaxis").first.locator(".tick text")
        ticks.first.wait_for()
        seconds = [float(t) for t in ticks.all_text_contents()]  # svg: no innerText
        window = float(items.at[0, "t_end"] - items.at[0, "t_start"])
        # Label Studio's default showed the first quarter: ticks up to 0.25 s of a 1 s window
        assert min(seconds) <= 0.05 * window and max(seconds) >= 0.85 * window, seconds
        labels = page.locator(".htx-timeseries svg g.yaxis").first.locator(".tick text")
        y = labels.all_text_contents()
        assert len(y) == len(set(y)) > 2, f"repeated y-axis labels: {y}"
        shots.take(page, "review-03-task-timeseries")
    assert stream_key(series) in tasks[0]["data"]
