"""Label Studio labeling config from a dataset spec: every stream of a window, one choice per class.

The stream's kind picks the tag (image and video frames -> <Image>, audio -> <Audio>,
timeseries -> <TimeSeries> with one <Channel> per declared channel, data inline as JSON,
text -> <Text>). The class choice points at the window header (a <Text> every task has), so a
window with an absent stream is still labelled against something that exists.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from modalops.dataset.spec import DatasetSpec

# Tag names and `$data` keys the config uses besides the streams' (streams are "stream_<name>").
CHOICES_NAME = "label"
HEADER_NAME = "modalops_window"
HEADER_KEY = "modalops_header"
REASONS_KEY = "modalops_reasons"
# Time column of every inline series: seconds from the window start (not a channel name the user
# could declare, since channels are plain column names without this prefix)
TIME_COLUMN = "modalops_t"

# kind name -> Label Studio object tag (video windows carry one JPEG/PNG frame: an image)
_TAG_BY_KIND = {
    "image": "Image",
    "video": "Image",
    "audio": "Audio",
    "timeseries": "TimeSeries",
    "text": "Text",
}


def stream_key(stream: str) -> str:
    """Tag name and task-data key of `stream`: letters, digits and '_' only (what LS accepts)."""
    return "stream_" + re.sub(r"[^A-Za-z0-9_]", "_", stream)


def title_key(stream: str) -> str:
    """Task-data key of the stream's heading (names the stream, its kind, and if it is absent)."""
    return stream_key(stream) + "_title"


def stream_tag(spec: DatasetSpec, stream: str) -> str:
    kind = spec.kind_of(stream).name
    if kind not in _TAG_BY_KIND:
        raise ValueError(
            f"streams.{stream}.kind: no Label Studio view for kind {kind!r}; "
            f"expected one of {sorted(_TAG_BY_KIND)}"
        )
    return _TAG_BY_KIND[kind]


def timeseries_channels(spec: DatasetSpec, stream: str) -> list[str]:
    return list(spec.params(stream).channels)


def labeling_config(spec: DatasetSpec) -> str:
    """The project's XML: header, each stream by kind, then the class choices."""
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="Window under review", size="4")
    ET.SubElement(view, "Text", name=HEADER_NAME, value=f"${HEADER_KEY}")
    ET.SubElement(view, "Text", name="modalops_routing", value=f"${REASONS_KEY}")
    for stream in spec.stream_names:
        tag = stream_tag(spec, stream)
        key = stream_key(stream)
        ET.SubElement(view, "Header", value=f"${title_key(stream)}", size="5")
        if tag == "TimeSeries":
            series = ET.SubElement(
                view,
                "TimeSeries",
                name=key,
                value=f"${key}",
                valueType="json",
                timeColumn=TIME_COLUMN,
            )
            for channel in timeseries_channels(spec, stream):
                ET.SubElement(series, "Channel", column=channel, legend=channel)
        elif tag == "Audio":
            # decoder "none" plays through an HTML5 <audio>: the waveform decoder fetches the URL
            # with "?lsref=1" appended (web/dist/apps/labelstudio/358.js, LS 1.23.2), which
            # corrupts a data: URI (net::ERR_INVALID_URL)
            ET.SubElement(view, "Audio", name=key, value=f"${key}", decoder="none", player="html5")
        elif tag == "Image":
            ET.SubElement(view, "Image", name=key, value=f"${key}", maxWidth="480px")
        else:
            ET.SubElement(view, "Text", name=key, value=f"${key}")
    ET.SubElement(view, "Header", value="Class of this window", size="5")
    choices = ET.SubElement(
        view, "Choices", name=CHOICES_NAME, toName=HEADER_NAME, choice="single", required="true"
    )
    for cls in spec.labels.classes:
        ET.SubElement(choices, "Choice", value=cls)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode")
