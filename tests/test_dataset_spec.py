"""The dataset spec: bad specs are refused naming the field; derived views; digest and compatibility."""

from __future__ import annotations

import copy

import pytest

from modalops.dataset.spec import SpecError, parse_spec, spec_from_text

BASE = {
    "name": "two-cams-imu",
    "sessions": {"table": "sessions.parquet", "id_column": "take", "folder": "takes/{session_id}"},
    "reference": "left_cam",
    "streams": {
        "left_cam": {"kind": "image", "path": "left/index.csv",
                     "cue": {"kind": "roi_brightness", "roi": [0, 0.1, 0.9, 1.0]}},
        "right_cam": {"kind": "image", "path": "right/index.csv", "params": {"channels": 1}},
        "imu": {"kind": "timeseries", "path": "imu.parquet",
                "params": {"time_column": "ts", "channels": ["wx", "wy", "wz"], "sample_rate": 200},
                "clock": {"search_s": 3.0}},
        "speech": {"kind": "text", "path": "words.jsonl", "required": False},
    },
    "labels": {"classes": ["idle", "grasp", "place"], "path": "events.csv",
               "start_column": "onset", "end_column": "offset", "label_column": "action"},
    "metadata": {"columns": ["rig", "hand"], "subject": "operator_id", "slices": ["rig", "hand"],
                 "stratify": "rig"},
}  # fmt: skip


def test_a_non_demo_spec_parses_and_derives_its_views():
    spec = parse_spec(copy.deepcopy(BASE))
    assert spec.stream_names == ["left_cam", "right_cam", "imu", "speech"]
    assert spec.required_streams == ["left_cam", "right_cam", "imu"]
    assert spec.meta_columns == ["rig", "hand", "subject"]
    assert spec.params("imu").channels == ["wx", "wy", "wz"]
    assert spec.params("right_cam").channels == 1 and spec.params("left_cam").channels == 3
    assert spec.streams["imu"].clock.search_s == 3.0
    assert spec.labels.index() == {"idle": 0, "grasp": 1, "place": 2}
    again = spec_from_text(spec.to_yaml())
    assert again.digest() == spec.digest()


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("streams", "imu", "kind"), "lidar", "streams.imu.kind: unknown kind 'lidar'"),
        (("streams", "imu", "params", "channels"), [], "channels: name at least one column"),
        (
            ("streams", "imu", "params", "rate"),
            5,
            "streams.imu: rate: Extra inputs are not permitted",
        ),
        (
            ("streams", "imu", "cue"),
            {"kind": "roi_brightness", "roi": [0, 1, 0, 1]},
            "does not fit kind timeseries",
        ),
        (("reference",), "depth", "reference 'depth' is not one of streams"),
        (("labels", "classes"), ["only"], "need at least 2 classes"),
        (("metadata", "slices"), ["room"], "slices: ['room'] not in metadata.columns"),
        (("metadata", "columns"), ["label"], "are names the sample table uses"),
        (("sessions", "folder"), "takes", "must contain '{session_id}'"),
        (("streams", "imu", "params", "sample_rate"), -1, "greater than 0"),
        (("surprise",), 1, "surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_specs_name_the_field(path, value, needle):
    doc = copy.deepcopy(BASE)
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(SpecError) as err:
        parse_spec(doc, "my/dataset.yaml")
    assert str(err.value).startswith("my/dataset.yaml: invalid dataset spec")
    assert needle in str(err.value), str(err.value)


def test_reserved_and_malformed_stream_names_are_refused():
    for bad in ("labels", "Front Cam", "cam.left"):
        doc = copy.deepcopy(BASE)
        doc["streams"][bad] = doc["streams"].pop("speech")
        with pytest.raises(SpecError):
            parse_spec(doc)


def test_yaml_errors_name_the_file():
    with pytest.raises(SpecError, match="x.yaml: not valid YAML"):
        spec_from_text("streams: [unclosed", "x.yaml")


def test_compatibility_check_names_what_differs():
    spec = parse_spec(copy.deepcopy(BASE))
    other = copy.deepcopy(BASE)
    other["labels"]["classes"] = ["idle", "grasp", "drop"]
    other["streams"]["imu"]["params"]["channels"] = ["wx", "wy"]
    with pytest.raises(SpecError) as err:
        spec.check_compatible(parse_spec(other))
    assert "classes" in str(err.value) and "stream 'imu' differs" in str(err.value)
    spec.check_compatible(parse_spec(copy.deepcopy(BASE)))  # identical: no error
