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

# <Audio>: the default decoder ("webaudio") draws the waveform; decoder="none" would only play.
# The decoder fetches the task's URL with "?lsref=1" appended (AudioUltra/Media/MediaLoader.ts,
# LS 1.23.2), so the audio is a percent-encoded data URI (tasks.py): the suffix becomes 8 bytes
# after the WAV's data chunk, which the decoder ignores, where in base64 it breaks the URI.
AUDIO_ATTRS = {"decoder": "webaudio", "player": "html5"}
# <TimeSeries>: LS opens a series zoomed to its first `overviewWidth` (default 25%); a review
# window is short, so all of it shows. Times are seconds from the window start (numbers, so d3
# number formats), with millisecond ticks in the tracker and the brush width.
TIMESERIES_ATTRS = {
    "valueType": "json",
    "timeColumn": TIME_COLUMN,
    "overviewWidth": "100%",
    "timeDisplayFormat": ".3f",
    "durationDisplayFormat": ".3f",
}
# <Channel>: LS formats y ticks with ".1f" by default, so a channel spanning 0.04 reads
# "0.0, 0.0, 0.0"; "~g" keeps six significant digits and drops trailing zeros
CHANNEL_ATTRS = {"displayFormat": "~g", "height": "140"}

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
                view, "TimeSeries", {"name": key, "value": f"${key}", **TIMESERIES_ATTRS}
            )
            for channel in timeseries_channels(spec, stream):
                ET.SubElement(series, "Channel", column=channel, legend=channel, **CHANNEL_ATTRS)
        elif tag == "Audio":
            ET.SubElement(view, "Audio", name=key, value=f"${key}", **AUDIO_ATTRS)
        elif tag == "Image":
            ET.SubElement(view, "Image", name=key, value=f"${key}", maxWidth="320px")
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


# What a task's data and its annotations depend on; the rest (sizes, formats, decoder) is how it
# looks, which a project made by an earlier modalops may have otherwise
_SEMANTIC_ATTRS = ("name", "value", "toName", "column", "valueType", "timeColumn", "choice")


def config_semantics(xml: str) -> list[tuple]:
    """The tags of a labeling config in order, each with its data and annotation attributes."""
    return [
        (el.tag, tuple((a, el.get(a)) for a in _SEMANTIC_ATTRS if el.get(a) is not None))
        for el in ET.fromstring(xml).iter()
    ]
