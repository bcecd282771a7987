"""Review without a server: labeling configs from specs, tasks from routed windows, import JSON."""

from __future__ import annotations

import base64
import io
import json
import urllib.parse
import wave
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from modalops.config.review import ReviewConfig
from modalops.dataset.columns import sample_key
from modalops.dataset.spec import DatasetSpec, load_spec_file
from modalops.review.client import resolve_review_target
from modalops.review.labeling import (
    CHOICES_NAME,
    HEADER_NAME,
    TIME_COLUMN,
    labeling_config,
    stream_key,
    title_key,
)
from modalops.review.tasks import build_tasks, write_import_json
from modalops.store import LocalStore
from tests.conftest import REPO

DEMO_SPEC = REPO / "modalops_demo" / "dataset.yaml"
MOTIONS_SPEC = REPO / "examples" / "basic_motions" / "dataset.yaml"

KIND_TAG = {"image": "Image", "video": "Image", "audio": "Audio", "timeseries": "TimeSeries"}
KIND_TAG["text"] = "Text"


def jpeg_bytes(colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buf, "JPEG")
    return buf.getvalue()


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (4, 4), 90).save(buf, "PNG")
    return buf.getvalue()


def wav_bytes(rate: int = 16000, seconds: float = 0.25) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        t = np.arange(int(rate * seconds)) / rate
        out.writeframes((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())
    return buf.getvalue()


def npy_bytes(rows: int, channels: int, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(seed).normal(size=(rows, channels)).astype(np.float32))
    return buf.getvalue()


def payload(spec: DatasetSpec, stream: str, seed: int) -> object:
    kind = spec.kind_of(stream).name
    if kind in ("image", "video"):
        return jpeg_bytes((seed * 40 % 255, 10, 10))
    if kind == "audio":
        return wav_bytes()
    if kind == "timeseries":
        return npy_bytes(20, len(spec.params(stream).channels), seed)
    return f"note {seed}"


def review_items(spec: DatasetSpec, n: int = 3, absent: dict[int, list[str]] | None = None):
    """Rows shaped like batch inference's routed windows, with real payload bytes."""
    absent = absent or {}
    classes = spec.labels.classes
    rows = []
    for i in range(n):
        row = {
            "session_id": "sess-a",
            "window_index": i,
            "t_start": 2.0 * i,
            "t_end": 2.0 * i + 2.0,
            "label": classes[i % len(classes)],
            "probability": 0.4 + 0.1 * i,
            "abstained": i == 0,
            "reasons": "low confidence; abstained" if i == 0 else "low confidence",
            "model_name": "fusion-test",
            "model_version": 7,
            "spec_digest": spec.digest(),
            **{f"prob_{c}": 1.0 / len(classes) for c in classes},
            **{c: f"{c}-value" for c in spec.metadata.columns},
        }
        if "subject" in spec.meta_columns:
            row["subject"] = f"subj-{i:02d}"
        for stream in spec.stream_names:
            missing = stream in absent.get(i, [])
            row[f"has__{stream}"] = not missing
            row[f"x__{stream}"] = None if missing else payload(spec, stream, i)
        rows.append(row)
    return pd.DataFrame(rows)


def _decode_data_uri(uri: str) -> tuple[str, bytes]:
    """(mime type, bytes) of a base64 or a percent-encoded data URI."""
    head, _, body = uri.partition(",")
    assert head.startswith("data:"), head
    if head.endswith(";base64"):
        return head[5:-7], base64.b64decode(body)
    assert not set(body) & set("?# \n"), body[:40]  # would end or change the URI
    return head[5:], urllib.parse.unquote_to_bytes(body)


# ---- labeling config -------------------------------------------------------------------------
@pytest.mark.parametrize("path", [DEMO_SPEC, MOTIONS_SPEC], ids=["demo", "two-timeseries"])
def test_labeling_config_has_a_view_per_stream_and_the_classes(path):
    spec = load_spec_file(path)
    root = ET.fromstring(labeling_config(spec))
    assert root.tag == "View"
    names = {el.get("name"): el for el in root.iter() if el.get("name")}
    for stream in spec.stream_names:
        el = names[stream_key(stream)]
        assert el.tag == KIND_TAG[spec.kind_of(stream).name]
        assert el.get("value") == f"${stream_key(stream)}"
        if el.tag == "TimeSeries":
            assert el.get("valueType") == "json" and el.get("timeColumn") == TIME_COLUMN
            assert [c.get("column") for c in el.findall("Channel")] == list(
                spec.params(stream).channels
            )
    choices = names[CHOICES_NAME]
    assert choices.tag == "Choices" and choices.get("toName") == HEADER_NAME
    assert [c.get("value") for c in choices.findall("Choice")] == spec.labels.classes
    assert names[HEADER_NAME].tag == "Text"
    # every object tag name is unique and LS-safe
    tags = [el.get("name") for el in root.iter() if el.get("name")]
    assert len(tags) == len(set(tags))
    assert all(t.replace("_", "").isalnum() for t in tags)


def test_two_timeseries_spec_gets_two_series_with_their_own_channels():
    spec = load_spec_file(MOTIONS_SPEC)
    root = ET.fromstring(labeling_config(spec))
    series = root.findall("TimeSeries")
    assert len(series) == 2
    channel_sets = [[c.get("column") for c in s.findall("Channel")] for s in series]
    assert channel_sets == [list(spec.params(s).channels) for s in spec.stream_names]
    assert channel_sets[0] != channel_sets[1]


# ---- tasks -----------------------------------------------------------------------------------
def test_build_tasks_embeds_payloads_that_decode_to_the_same_bytes():
    spec = load_spec_file(DEMO_SPEC)
    items = review_items(spec, n=2)
    tasks = build_tasks(spec, items)
    assert len(tasks) == 2
    for (_, row), task in zip(items.iterrows(), tasks, strict=True):
        data = task["data"]
        assert data["modalops_key"] == sample_key(row["session_id"], row["window_index"])
        assert data["session_id"] == "sess-a" and data["window_index"] == row["window_index"]
        assert (data["t_start"], data["t_end"]) == (row["t_start"], row["t_end"])
        assert data["subject"] == row["subject"]
        assert data["reasons"] == row["reasons"] and row["reasons"] in data["modalops_reasons"]
        assert data["model_name"] == "fusion-test" and data["model_version"] == "7"
        assert data["spec_digest"] == spec.digest()
        assert row["subject"] in data["modalops_header"]
        for stream in spec.stream_names:
            kind = spec.kind_of(stream).name
            value = data[stream_key(stream)]
            if kind in ("image", "video"):
                mime, raw = _decode_data_uri(value)
                assert mime == "image/jpeg" and raw == row[f"x__{stream}"]
            elif kind == "audio":
                mime, raw = _decode_data_uri(value)
                assert mime == "audio/wav" and raw == row[f"x__{stream}"]
            elif kind == "timeseries":
                arr = np.load(io.BytesIO(row[f"x__{stream}"]))
                channels = list(spec.params(stream).channels)
                assert set(value) == {TIME_COLUMN, *channels}
                got = np.array([value[c] for c in channels], dtype=np.float32).T
                np.testing.assert_array_equal(got, arr)
                rate = spec.params(stream).sample_rate
                assert value[TIME_COLUMN][:2] == [0.0, round(1 / rate, 6)]
            else:
                assert value == row[f"x__{stream}"]
            assert data[title_key(stream)] == f"{stream} ({kind})"
    json.dumps(tasks)  # plain JSON all the way down


def test_prediction_block_starts_the_reviewer_from_the_models_answer():
    spec = load_spec_file(DEMO_SPEC)
    items = review_items(spec, n=3)
    for (_, row), task in zip(items.iterrows(), build_tasks(spec, items), strict=True):
        (pred,) = task["predictions"]
        assert pred["model_version"] == "fusion-test:v7"
        assert pred["score"] == pytest.approx(row["probability"])
        (region,) = pred["result"]
        assert region == {
            "from_name": CHOICES_NAME,
            "to_name": HEADER_NAME,
            "type": "choices",
            "value": {"choices": [row["label"]]},
        }


def test_absent_streams_keep_their_key_with_a_placeholder_and_are_named():
    spec = load_spec_file(DEMO_SPEC)
    by_kind = {spec.kind_of(s).name: s for s in spec.stream_names}
    gone = [by_kind["audio"], by_kind["timeseries"], by_kind["text"]]
    items = review_items(spec, n=2, absent={1: gone})
    # a payload can also be absent without a presence flag: an empty value
    items.loc[0, f"x__{by_kind['text']}"] = ""
    tasks = build_tasks(spec, items)
    data = tasks[1]["data"]
    for stream in gone:
        assert stream in data["modalops_header"].split("absent: ")[1]
        assert data[title_key(stream)].endswith("absent here")
    mime, raw = _decode_data_uri(data[stream_key(by_kind["audio"])])
    with wave.open(io.BytesIO(raw)) as wav:  # a valid (silent) WAV, not an error box,
        # as long as the window, so the player's timeline reads its seconds
        assert mime == "audio/wav" and wav.getnframes() / wav.getframerate() == 2.0
        assert set(wav.readframes(wav.getnframes())) == {128}  # unsigned 8-bit silence
    series = data[stream_key(by_kind["timeseries"])]
    assert series[TIME_COLUMN] == [0.0, 2.0]
    assert data[stream_key(by_kind["text"])] == ""
    # present streams of the same row are untouched
    assert _decode_data_uri(data[stream_key(by_kind["image"])])[1] == items.iloc[1]["x__camera"]
    assert "absent" not in tasks[0]["data"][title_key(by_kind["audio"])]
    assert tasks[0]["data"][title_key(by_kind["text"])].endswith("absent here")


def test_png_frames_and_bad_payloads():
    spec = load_spec_file(DEMO_SPEC)
    items = review_items(spec, n=1)
    image = next(s for s in spec.stream_names if spec.kind_of(s).name == "image")
    items.at[0, f"x__{image}"] = png_bytes()
    mime, raw = _decode_data_uri(build_tasks(spec, items)[0]["data"][stream_key(image)])
    assert mime == "image/png" and raw == png_bytes()

    items.at[0, f"x__{image}"] = b"GIF89a not a frame"
    with pytest.raises(ValueError, match=rf"stream '{image}'.*neither JPEG nor PNG"):
        build_tasks(spec, items)

    series = next(s for s in spec.stream_names if spec.kind_of(s).name == "timeseries")
    items = review_items(spec, n=1)
    items.at[0, f"x__{series}"] = npy_bytes(10, 7)
    with pytest.raises(ValueError, match=r"expected an array \(rows, 3\)"):
        build_tasks(spec, items)

    with pytest.raises(ValueError, match=r"missing columns \['probability'\]"):
        build_tasks(spec, review_items(spec, n=1).drop(columns=["probability"]))


def test_import_json_in_a_local_store(tmp_path):
    spec = load_spec_file(MOTIONS_SPEC)
    tasks = build_tasks(spec, review_items(spec, n=3))
    store = LocalStore(tmp_path / "store")
    uri = write_import_json(store, "runs/r1/review/import.json", tasks)
    assert uri.endswith("import.json")
    loaded = json.loads(store.get_text("runs/r1/review/import.json"))
    assert loaded == tasks
    assert isinstance(loaded, list) and {"data", "predictions"} <= set(loaded[0])
    assert [t["data"]["modalops_key"] for t in loaded] == [
        sample_key("sess-a", i) for i in range(3)
    ]


# ---- target ----------------------------------------------------------------------------------
def test_resolve_review_target(tmp_path, monkeypatch):
    monkeypatch.delenv("LS_TOKEN_FOR_TEST", raising=False)
    cfg = ReviewConfig(url="http://ls.example:8080/", api_key_env="LS_TOKEN_FOR_TEST")
    with pytest.raises(RuntimeError, match=r"\$LS_TOKEN_FOR_TEST is not set"):
        resolve_review_target(cfg)
    monkeypatch.setenv("LS_TOKEN_FOR_TEST", "abc123")
    assert resolve_review_target(cfg) == ("http://ls.example:8080", "abc123")
    # no url, no local server under this home: the JSON fallback
    assert resolve_review_target(ReviewConfig(home=str(tmp_path / "ls"))) is None


def test_review_config_refuses_unknown_keys():
    with pytest.raises(ValueError, match="prot"):
        ReviewConfig.model_validate({"prot": 1})


# ---- how the task looks in Label Studio ------------------------------------------------------
def test_audio_is_decoded_for_its_waveform_and_survives_the_decoders_url_suffix():
    spec = load_spec_file(DEMO_SPEC)
    audio = next(s for s in spec.stream_names if spec.kind_of(s).name == "audio")
    el = ET.fromstring(labeling_config(spec)).find(f".//Audio[@name='{stream_key(audio)}']")
    # decoder "none" plays without a waveform; "webaudio" decodes the file and draws it
    assert el.get("decoder") == "webaudio" and el.get("player") == "html5"
    items = review_items(spec, n=1)
    uri = build_tasks(spec, items)[0]["data"][stream_key(audio)]
    assert uri.startswith("data:audio/wav,")  # percent-encoded, not base64
    # Label Studio 1.23.2 fetches the URL with "?lsref=1" appended: what the browser then gets
    # is the WAV with 8 bytes after its data chunk, and it reads as the same audio
    _, got = _decode_data_uri(uri)
    suffixed = got + b"?lsref=1"
    with (
        wave.open(io.BytesIO(suffixed)) as wav,
        wave.open(io.BytesIO(items.at[0, "x__audio"])) as w0,
    ):
        assert wav.getparams() == w0.getparams()
        assert wav.readframes(wav.getnframes()) == w0.readframes(w0.getnframes())


def test_timeseries_open_on_the_whole_window_with_distinct_tick_labels():
    spec = load_spec_file(MOTIONS_SPEC)
    for series in ET.fromstring(labeling_config(spec)).iter("TimeSeries"):
        # Label Studio's default (25%) opens a 1 s window on its first 0.25 s
        assert series.get("overviewWidth") == "100%"
        assert series.get("timeDisplayFormat") == ".3f"
        for channel in series.findall("Channel"):
            # the default ".1f" prints ticks 0.01 apart as "0.0, 0.0, 0.0"
            assert channel.get("displayFormat") == "~g"


def test_an_older_projects_config_differs_in_looks_only():
    from modalops.review.labeling import config_semantics

    spec = load_spec_file(DEMO_SPEC)
    now = labeling_config(spec)
    before = now.replace('decoder="webaudio"', 'decoder="none"').replace(
        ' overviewWidth="100%"', ""
    )
    assert before != now and config_semantics(before) == config_semantics(now)
    renamed = now.replace(f'value="{spec.labels.classes[0]}"', 'value="other"')
    assert config_semantics(renamed) != config_semantics(now)


def test_review_tab_shows_the_reviewers_columns_and_hides_the_rest():
    from modalops.review.client import column_ids, review_view

    columns = column_ids(
        [
            {"id": "id", "target": "tasks"},
            {"id": "inner_id", "target": "tasks"},
            {"id": "data", "target": "tasks", "children": ["session_id", "modalops_key"]},
            {"id": "session_id", "target": "tasks", "parent": "data"},
            {"id": "predicted_label", "target": "tasks", "parent": "data"},
            {"id": "modalops_key", "target": "tasks", "parent": "data"},
            {"id": "stream_audio_title", "target": "tasks", "parent": "data"},
        ]
    )
    assert columns == [
        "tasks:id",
        "tasks:inner_id",
        "tasks:data.session_id",
        "tasks:data.predicted_label",
        "tasks:data.modalops_key",
        "tasks:data.stream_audio_title",
    ]
    view = review_view(columns)
    assert view["title"] == "Review"
    assert view["hiddenColumns"]["explore"] == [
        "tasks:inner_id",
        "tasks:data.modalops_key",
        "tasks:data.stream_audio_title",
    ]
    # beside the editor too: the window and the model's answer
    assert view["hiddenColumns"]["labeling"] == view["hiddenColumns"]["explore"]
    assert set(view["columnsWidth"]) == {
        "tasks:id",
        "tasks:data.session_id",
        "tasks:data.predicted_label",
    }


def test_tasks_carry_the_models_answer_as_plain_columns():
    spec = load_spec_file(DEMO_SPEC)
    items = review_items(spec, n=2)
    for (_, row), task in zip(items.iterrows(), build_tasks(spec, items), strict=True):
        assert task["data"]["predicted_label"] == row["label"]
        assert task["data"]["predicted_probability"] == round(row["probability"], 4)


def test_credentials_name_the_email_and_read_files_that_called_it_username(tmp_path):
    from modalops.review.service import ADMIN_EMAIL, credentials

    made = credentials(tmp_path / "new")
    assert made["email"] == ADMIN_EMAIL and "username" not in made
    assert json.loads((tmp_path / "new" / "credentials.json").read_text()) == made
    old = tmp_path / "old"
    old.mkdir()
    (old / "credentials.json").write_text(
        json.dumps({"username": "me@example.org", "password": "p" * 24, "token": "t" * 40})
    )
    assert credentials(old) == {"email": "me@example.org", "password": "p" * 24, "token": "t" * 40}
