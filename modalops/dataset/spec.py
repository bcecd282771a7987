"""The dataset spec: one YAML file that declares a user's recordings (streams, clocks, labels, metadata).

Everything downstream is derived from it: the readers, the windows, the validation suites, the
shards, the encoders, the evaluation slices and the served model's input signature. A stream's
*kind* decides how it is handled; its *name* is the user's (docs/bring-your-own-data.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modalops.kinds import get_kind, kind_names

SPEC_FILE = "dataset.yaml"
SPEC_FORMAT = "modalops.dataset/1"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Column names the aligned-sample table uses itself; metadata may not take them.
RESERVED_COLUMNS = frozenset(
    {"session_id", "window_index", "t_start", "t_end", "label", "label_overlap", "boundary",
     "align_confidence", "subject", "split", "key", "label_index"}
)  # fmt: skip


class SpecError(ValueError):
    """A dataset spec is invalid; the message names the file, the field and what was expected."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class CueSpec(_Model):
    """Which signal in a stream carries the sync events shared with the reference stream."""

    kind: Literal["roi_brightness", "rms_envelope", "magnitude_envelope", "none"] = Field(
        default="none",
        description="roi_brightness: mean brightness of an image region per frame (image, "
        "video); rms_envelope: RMS of a sampled signal (audio, timeseries); magnitude_envelope: "
        "vector magnitude of multi-channel samples (timeseries); none: no cue.",
    )
    roi: tuple[float, float, float, float] | None = Field(
        default=None,
        description="roi_brightness only: top, bottom, left, right of the region as fractions "
        "of the frame height and width (bottom and right exclusive).",
    )
    channel: Literal["mean", "red", "green", "blue"] = Field(
        default="mean", description="roi_brightness only: colour channel averaged in the region."
    )
    smooth_s: float = Field(
        default=0.1, gt=0, description="Gaussian smoothing (sigma, seconds) of the envelope."
    )

    @model_validator(mode="after")
    def _check(self) -> CueSpec:
        if self.kind == "roi_brightness":
            if self.roi is None:
                raise ValueError("roi_brightness needs roi: [top, bottom, left, right] fractions")
            top, bottom, left, right = self.roi
            if not (0 <= top < bottom <= 1 and 0 <= left < right <= 1):
                raise ValueError(
                    f"roi {list(self.roi)}: expected 0 <= top < bottom <= 1 and 0 <= left < right <= 1"
                )
        return self


class ClockSpec(_Model):
    """What is known about a stream's clock relative to the reference stream's clock."""

    initial: Literal["file", "zero"] = Field(
        default="file",
        description="Starting guess of offset and drift: 'file' reads them from the session's "
        "clock file (sessions.clock_file; a stream missing there starts at zero), 'zero' "
        "assumes the device shares the reference clock.",
    )
    estimate: bool = Field(
        default=True,
        description="Refine the clock from the data (cross-correlating this stream's sync cue "
        "with the reference's) when align.mode is estimate. Needs a cue on both streams; a "
        "stream without one keeps its starting guess.",
    )
    search_s: float = Field(
        default=10.0,
        gt=0,
        description="Largest |offset - starting guess| searched (seconds): how wrong the "
        "device clock may be.",
    )
    start_file: str | None = Field(
        default=None,
        description="A JSON file in the session folder (e.g. 'mic.json') in which this device "
        "wrote when it started recording; it is the starting guess and wins over the clock "
        "file. Its start is taken on the reference's clock, or, when the reference declares a "
        "start file too, relative to the reference's start (offset = reference start - this "
        "start).",
    )
    start_field: str = Field(
        default="start_time_s",
        description="start_file only: the field holding the start time in seconds (a dotted "
        "path such as 'device.start_s' reaches into nested objects).",
    )

    @field_validator("start_file")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/") or not value):
            raise ValueError(f"start_file {value!r}: expected a path inside the session folder")
        return value


class StreamSpec(_Model):
    """One recorded stream: its kind, where its files are in a session folder, and its parameters."""

    kind: str = Field(description="Stream kind: image, video, audio, timeseries or text.")
    path: str = Field(
        description="File inside the session folder (e.g. 'audio.wav', 'imu/accel.csv'), or a "
        "glob pattern ('*.mp4') matching exactly one file. For image streams: the frame index "
        "table (time column + file column, files relative to the index's folder).",
    )
    required: bool = Field(
        default=True,
        description="A required stream missing in a window makes it incomplete (validation "
        "counts completeness over required streams); an optional one is simply absent.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The kind's parameters (time column, channels, sample rate, image size, ...); "
        "each kind documents and checks its own (`modalops dataset kinds`).",
    )
    checks: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the kind's per-window validation thresholds (each kind "
        "documents its own).",
    )
    cue: CueSpec | str = Field(
        default_factory=CueSpec,
        description="Sync cue: a mapping {kind, roi, channel, smooth_s} or a shorthand "
        "(rms_envelope, magnitude_envelope, none).",
    )
    clock: ClockSpec = Field(default_factory=ClockSpec, description="Clock knowledge.")

    @field_validator("cue", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in ("rms_envelope", "magnitude_envelope", "none"):
                raise ValueError(
                    f"unknown cue shorthand {value!r}; use rms_envelope, magnitude_envelope, none "
                    "or a mapping {kind: roi_brightness, roi: [...]}"
                )
            return {"kind": value}
        return value

    @property
    def cue_spec(self) -> CueSpec:
        return self.cue if isinstance(self.cue, CueSpec) else CueSpec(kind=self.cue)


class SessionsSpec(_Model):
    """The sessions table and where each session's folder is."""

    table: str = Field(
        default="sessions.csv",
        description="Sessions table at the raw root (CSV or Parquet), one row per session.",
    )
    id_column: str = Field(default="session_id", description="Column holding the session id.")
    folder: str = Field(
        default="sessions/{session_id}",
        description="Session folder relative to the raw root; '{session_id}' is replaced.",
    )
    clock_file: str | None = Field(
        default=None,
        description="Optional per-session clock file inside the session folder (JSON: "
        '{"streams": {"<stream>": {"offset_s", "drift_ppm", "start_s"}}}). Offsets follow '
        "t_device = t_ref + offset_s + drift_ppm*1e-6*t_ref.",
    )
    sync_file: str | None = Field(
        default=None,
        description="Optional per-session JSON of explicit sync markers (device-clock seconds "
        "per stream); when present they take precedence over estimated offsets.",
    )

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        if "{session_id}" not in value:
            raise ValueError(f"folder {value!r} must contain '{{session_id}}'")
        return value


class LabelSpec(_Model):
    """The declared classes and where each session's labels come from."""

    classes: list[str] = Field(description="Ordered class names (index order of the model).")
    source: Literal["intervals", "session"] = Field(
        default="intervals",
        description="intervals: a table per session of [start, end) intervals on the reference "
        "clock; session: one label per session from a column of the sessions table.",
    )
    path: str | None = Field(
        default="labels.csv",
        description="intervals: the label table inside the session folder (CSV or Parquet).",
    )
    start_column: str = Field(default="start_s", description="intervals: start time column (s).")
    end_column: str = Field(default="end_s", description="intervals: end time column (s).")
    label_column: str = Field(default="label", description="intervals: class column.")
    column: str | None = Field(
        default=None, description="session: the sessions-table column holding the class."
    )
    corrections: str = Field(
        default="corrections",
        description="Folder at the raw root with reviewed label corrections (written by the "
        "feedback flow, one versioned file per pull). They are applied over the label source: a "
        "reviewed window takes the reviewer's class; a session with no label table is labelled "
        "where it was reviewed.",
    )

    @model_validator(mode="after")
    def _check(self) -> LabelSpec:
        if len(self.classes) < 2:
            raise ValueError(f"classes: need at least 2 classes, got {self.classes}")
        dup = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if dup:
            raise ValueError(f"classes: duplicated {dup}")
        if self.source == "intervals" and not self.path:
            raise ValueError("source intervals needs path: the per-session label table")
        if self.source == "session" and not self.column:
            raise ValueError("source session needs column: the sessions-table column of the class")
        return self

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}


class MetadataSpec(_Model):
    """Session metadata columns and their roles."""

    columns: list[str] = Field(
        default_factory=list,
        description="Sessions-table columns carried into every sample (besides the subject).",
    )
    subject: str | None = Field(
        default=None,
        description="Column identifying the recorded person or unit: pseudonymised at ingest "
        "(column 'subject' downstream), and a subject's sessions stay in one split.",
    )
    slices: list[str] = Field(
        default_factory=list,
        description="Columns whose values are evaluation slices and validation subgroups.",
    )
    stratify: str | None = Field(
        default=None, description="Column the session split is stratified by."
    )

    @model_validator(mode="after")
    def _check(self) -> MetadataSpec:
        known = set(self.columns)
        clash = sorted(known & RESERVED_COLUMNS)
        if clash:
            raise ValueError(f"columns: {clash} are names the sample table uses; rename them")
        for role, cols in (("slices", self.slices), ("stratify", [self.stratify])):
            missing = [c for c in cols if c is not None and c not in known]
            if missing:
                raise ValueError(f"{role}: {missing} not in metadata.columns {sorted(known)}")
        if self.subject is not None and self.subject in known:
            raise ValueError(
                f"subject column {self.subject!r} must not also be in columns (it is carried "
                "pseudonymised, as 'subject')"
            )
        return self


class DatasetSpec(_Model):
    """A user's multimodal recordings, declared: streams, reference clock, labels, metadata."""

    name: str = Field(description="Dataset name (shown in runs and the registry).")
    format: Literal["modalops.dataset/1"] = Field(
        default=SPEC_FORMAT, description="Spec format version."
    )
    sessions: SessionsSpec = Field(default_factory=SessionsSpec, description="Sessions table.")
    streams: dict[str, StreamSpec] = Field(description="Streams by the user's name.")
    reference: str = Field(description="The stream whose clock the labels and windows use.")
    labels: LabelSpec = Field(description="Classes and their source.")
    metadata: MetadataSpec = Field(default_factory=MetadataSpec, description="Metadata roles.")

    @field_validator("streams")
    @classmethod
    def _names(cls, value: dict[str, StreamSpec]) -> dict[str, StreamSpec]:
        if not value:
            raise ValueError("streams: declare at least one stream")
        taken = sorted(set(value) & {"clock", "labels", "sync"})
        if taken:
            raise ValueError(f"stream names {taken} are reserved for the session's own files")
        bad = [n for n in value if not _NAME.match(n)]
        if bad:
            raise ValueError(
                f"stream names {bad}: use lowercase letters, digits and '_', starting with a letter"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> DatasetSpec:
        if self.reference not in self.streams:
            raise ValueError(
                f"reference {self.reference!r} is not one of streams {list(self.streams)}"
            )
        for name, stream in self.streams.items():
            if stream.kind not in kind_names():
                raise ValueError(
                    f"streams.{name}.kind: unknown kind {stream.kind!r}; expected one of {kind_names()}"
                )
            kind = get_kind(stream.kind)
            try:
                stream.params = kind.params_model.model_validate(stream.params).model_dump()
                stream.checks = kind.checks_model.model_validate(stream.checks).model_dump()
            except ValidationError as exc:
                raise ValueError(f"streams.{name}: {_first_errors(exc)}") from None
            cue = stream.cue_spec.kind
            if cue not in kind.cues:
                raise ValueError(
                    f"streams.{name}.cue: {cue!r} does not fit kind {stream.kind}; expected one of "
                    f"{list(kind.cues)}"
                )
        if self.labels.source == "session" and self.labels.column in self.metadata.columns:
            raise ValueError(f"labels.column {self.labels.column!r} must not be a metadata column")
        return self

    # ---- derived views ---------------------------------------------------------------------
    def params(self, stream: str) -> Any:
        """The typed parameters of `stream` (its kind's params model)."""
        spec = self.streams[stream]
        return get_kind(spec.kind).params_model.model_validate(spec.params)

    def checks(self, stream: str) -> Any:
        """The typed validation thresholds of `stream` (its kind's checks model)."""
        spec = self.streams[stream]
        return get_kind(spec.kind).checks_model.model_validate(spec.checks)

    def kind_of(self, stream: str):
        return get_kind(self.streams[stream].kind)

    @property
    def stream_names(self) -> list[str]:
        return list(self.streams)

    @property
    def required_streams(self) -> list[str]:
        return [n for n, s in self.streams.items() if s.required]

    @property
    def meta_columns(self) -> list[str]:
        """Metadata columns of every sample: the carried columns, then 'subject' if declared."""
        return [*self.metadata.columns, *(["subject"] if self.metadata.subject else [])]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def digest(self) -> str:
        """sha256 of the canonical JSON form: equal specs have equal digests.

        Fields left at their defaults are not part of it, so a field added to the spec format
        later (with a default) does not change the digest of specs written before it.
        """
        form = self.model_dump(mode="json", exclude_defaults=True)
        text = json.dumps(form, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def check_compatible(self, other: DatasetSpec, what: str = "model") -> None:
        """Raise SpecError when `other` cannot be decoded by a model trained on this spec."""
        problems = []
        if other.labels.classes != self.labels.classes:
            problems.append(f"classes {other.labels.classes} != {self.labels.classes}")
        for name, s in self.streams.items():
            o = other.streams.get(name)
            if o is None:
                problems.append(f"stream {name!r} missing")
            elif o.kind != s.kind or o.params != s.params:
                problems.append(
                    f"stream {name!r} differs ({o.kind} {o.params} vs {s.kind} {s.params})"
                )
        if problems:
            raise SpecError(
                f"dataset spec {other.name!r} does not match the spec the {what} was trained on "
                f"({self.name!r}): " + "; ".join(problems)
            )


def _first_errors(exc: ValidationError, n: int = 3) -> str:
    parts = []
    for err in exc.errors()[:n]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(
            f"{loc}: {err['msg']}" + (f" (got {err['input']!r})" if "input" in err else "")
        )
    return "; ".join(parts)


def parse_spec(doc: Any, source: str = SPEC_FILE) -> DatasetSpec:
    """A DatasetSpec from a parsed YAML document; SpecError names `source` and the field."""
    if not isinstance(doc, dict):
        raise SpecError(f"{source}: expected a mapping at the top level, got {type(doc).__name__}")
    try:
        return DatasetSpec.model_validate(doc)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(root)"
            msg = err["msg"].removeprefix("Value error, ")
            got = f" (got {err['input']!r})" if err["type"] != "missing" and "input" in err else ""
            if len(got) > 120:
                got = ""
            lines.append(f"  {loc}: {msg}{got}")
        raise SpecError(f"{source}: invalid dataset spec\n" + "\n".join(lines)) from None


def spec_from_text(text: str, source: str = SPEC_FILE) -> DatasetSpec:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML ({exc})") from None
    return parse_spec(doc, source)


def load_spec_file(path: str | Path) -> DatasetSpec:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: dataset spec file not found")
    return spec_from_text(path.read_text(encoding="utf-8"), str(path))
