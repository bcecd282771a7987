"""Score the gate against the demo generator's injected defects: which ones it caught, and why.

Used by `benchmarks/validation_detection.py` (issue 4's detection table) and by the test that
every corruption kind is caught with its reason. A defect counts as caught only by evidence of
its own kind: a quarantine row naming its file with the expected reason, a window of its session
rejected by the expected check, or, for a wrong label, a window whose label it changed rejected
as `label_inconsistent`. A defect hidden by another one (its session or stream quarantined for a
different reason, so its data never reaches training) is reported as `masked`, not as caught.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modalops import quarantine
from modalops.align import align_dataset
from modalops.config.align import AlignConfig
from modalops.config.data import IngestConfig
from modalops.config.validate import ValidateConfig
from modalops.dataset.spec import SPEC_FILE, DatasetSpec, spec_from_text
from modalops.ingest import ingest_recordings
from modalops.runs import get_frame
from modalops.store import open_store
from modalops.validate import ValidationResult, validate_dataset
from modalops.validate.label_check import REASON as LABEL_REASON
from modalops_demo.corruption import CorruptionRecord

# kind -> (where the evidence lies, pattern its reason must match)
#   file:    a row of any stage whose uri ends with the defect's file
#   session: a `validate` row (a rejected window) of the defect's session
#   windows: a `validate` row for a window whose label the defect changed
EVIDENCE: dict[str, tuple[str, str]] = {
    "jpeg": ("file", r"not (?:a decodable JPEG|an image)"),
    "truncated_wav": ("file", r"truncated WAV"),
    "sample_rate": ("file", r"sample rate \d+ Hz, (?:the clock file|clock\.json) says"),
    "nan_burst": ("session", r"^vibration_nan_fraction:"),
    "flatline": ("session", r"^vibration_flat_channels:"),
    "shuffled_timestamps": ("file", r"timestamps out of order"),
    "missing_modality": ("file", r"file is missing"),
    "unknown_label": ("file", r"unknown labels"),
    "label_shift": ("windows", r"^label_inconsistent:"),
    "label_swap": ("windows", r"^label_inconsistent:"),
}

_SWAP = re.compile(r"interval \d+ (\w+) -> (\w+)")
_SHIFT = re.compile(r"interval \d+ \((\w+)\) shifted")

WINDOW_KEY = ["session_id", "window_index"]


@dataclass
class GateRun:
    """What ingest → align → validate (the stages before the gate, without Prefect) produced."""

    spec: DatasetSpec  # the spec the stages ran with (the raw root's dataset.yaml)
    part_keys: list[str]  # aligned parts in the output store
    samples: pd.DataFrame  # the aligned windows the gate judged
    result: ValidationResult
    manifest: pd.DataFrame  # quarantine rows of all three stages
    seconds: tuple[float, float]  # (ingest + align, validate)


def raw_spec(raw_uri: str) -> DatasetSpec:
    """The dataset spec the generator wrote at the raw root (dataset.yaml)."""
    raw = open_store(raw_uri)
    return spec_from_text(raw.get_bytes(SPEC_FILE).decode("utf-8"), raw.uri(SPEC_FILE))


def run_gate_stages(
    raw_uri: str, out_uri: str, cfg: ValidateConfig, spec: DatasetSpec | None = None
) -> GateRun:
    """Ingest the raw layout at `raw_uri`, align into `out_uri` and validate with `cfg`
    (ingest and align at their defaults), as the flow's first three stages do. `spec`
    defaults to the raw root's dataset.yaml."""
    raw = open_store(raw_uri)
    spec = spec or raw_spec(raw_uri)
    t0 = time.perf_counter()
    ingested = ingest_recordings(raw, spec, IngestConfig(raw_uri=raw_uri))
    out = open_store(out_uri)
    aligned = align_dataset(
        raw, spec, ingested.catalog, AlignConfig(), out, "run", ingested.quarantine
    )
    samples = pd.concat([get_frame(out, k) for k in aligned.part_keys], ignore_index=True)
    t1 = time.perf_counter()
    result = validate_dataset(spec, ingested.catalog, samples, cfg, align_report=aligned.report)
    t2 = time.perf_counter()
    manifest = quarantine.concat(ingested.quarantine, aligned.quarantine, result.quarantine)
    return GateRun(spec, aligned.part_keys, samples, result, manifest, (t1 - t0, t2 - t1))


@dataclass(frozen=True)
class Detection:
    """The verdict on one injected defect."""

    kind: str
    session_id: str
    file: str
    outcome: str  # caught | missed | masked | no_effect (a label change no window saw)
    evidence: str  # the matching quarantine reason, or why it is masked / missed
    bad_windows: int | None = None  # label kinds: windows whose label it changed


def wrong_label_windows(noisy: pd.DataFrame, clean: pd.DataFrame) -> pd.DataFrame:
    """Windows (by session and index) labelled in both runs whose labels differ.

    `noisy` and `clean` are validation stats tables (`ValidationResult.stats`) of the same
    signals with and without label corruption; columns session_id, window_index, noisy, clean.
    """
    both = (
        noisy.set_index(WINDOW_KEY)["label"]
        .to_frame("noisy")
        .join(clean.set_index(WINDOW_KEY)["label"].rename("clean"), how="inner")
    )
    both = both.dropna()
    return both[both["noisy"] != both["clean"]].reset_index()


def flag_scores(result: ValidationResult, wrong: pd.DataFrame) -> dict[str, float]:
    """The label check's flags against the windows whose label is really wrong: counts,
    precision (flags on wrong windows / flags) and recall (wrong windows flagged / wrong)."""
    rejected = result.rejected
    flags = rejected[rejected["reason"].astype(str).str.startswith(LABEL_REASON + ":")]
    keys = set(zip(wrong["session_id"], wrong["window_index"].astype(int), strict=True))
    hits = sum(
        (s, int(w)) in keys for s, w in zip(flags["session_id"], flags["window_index"], strict=True)
    )
    return {
        "wrong_windows": len(wrong),
        "flagged": len(flags),
        "hits": hits,
        "flag_precision": hits / len(flags) if len(flags) else float("nan"),
        "flag_recall": hits / len(wrong) if len(wrong) else float("nan"),
    }


def _label_windows(record: CorruptionRecord, wrong: pd.DataFrame) -> pd.DataFrame:
    """The wrong windows this label defect accounts for (same session, a label it involves)."""
    rows = wrong[wrong["session_id"] == record.session_id]
    swap, shift = _SWAP.search(record.detail), _SHIFT.search(record.detail)
    if record.kind == "label_swap" and swap:
        return rows[(rows["clean"] == swap.group(1)) & (rows["noisy"] == swap.group(2))]
    if record.kind == "label_shift" and shift:
        label = shift.group(1)  # the interval grew over a neighbour, or a neighbour over it
        return rows[(rows["noisy"] == label) | (rows["clean"] == label)]
    return rows


def _masking(record: CorruptionRecord, manifest: pd.DataFrame, aligned: set[str]) -> str:
    """Why this defect's data never reached the gate, or '' when it did."""
    rows = manifest[manifest["session_id"].astype(str) == record.session_id]
    if record.session_id not in aligned:
        reasons = rows.loc[rows["window_index"].isna(), "reason"].astype(str)
        return "session not aligned: " + (reasons.iloc[-1] if len(reasons) else "no reason")
    own_file = rows[
        rows["uri"].astype(str).str.endswith(record.file) & (rows["stage"] != "validate")
    ]
    if len(own_file):
        return "file quarantined: " + str(own_file["reason"].iloc[0])
    return ""


def score_detections(
    records: Iterable[CorruptionRecord],
    manifest: pd.DataFrame,
    samples: pd.DataFrame,
    wrong: pd.DataFrame | None = None,
) -> list[Detection]:
    """One verdict per injected defect.

    `manifest` is the quarantine manifest of every stage, `samples` the aligned windows the
    gate saw (session_id at least), `wrong` the output of `wrong_label_windows` (needed to
    judge label defects window by window; without it a label defect is caught by any
    `label_inconsistent` window of its session).
    """
    out: list[Detection] = []
    validate = manifest[manifest["stage"] == "validate"]
    aligned = set(samples["session_id"].astype(str))
    for record in records:
        where, pattern = EVIDENCE[record.kind]
        if where == "file":
            rows = manifest[manifest["uri"].astype(str).str.endswith(record.file)]
        else:
            rows = validate[validate["session_id"].astype(str) == record.session_id]
        bad_windows = None
        if where == "windows" and wrong is not None:
            mine = _label_windows(record, wrong)
            bad_windows = len(mine)
            keys = set(zip(mine["session_id"], mine["window_index"].astype(int), strict=True))
            in_mine = np.array(
                [
                    (s, int(w)) in keys
                    for s, w in zip(rows["session_id"], rows["window_index"], strict=True)
                ],
                dtype=bool,
            )
            rows = rows[in_mine]
        hits = rows[rows["reason"].astype(str).str.contains(pattern, regex=True)]
        if len(hits):
            outcome, evidence = "caught", str(hits["reason"].iloc[0])
        elif masked := _masking(record, manifest, aligned):
            outcome, evidence = "masked", masked
        elif bad_windows == 0:
            outcome, evidence = "no_effect", "no aligned window's label changed"
        else:
            outcome, evidence = "missed", f"no quarantine row matches {pattern!r}"
        out.append(
            Detection(record.kind, record.session_id, record.file, outcome, evidence, bad_windows)
        )
    return out


def detection_table(detections: list[Detection]) -> pd.DataFrame:
    """Per kind: injected, caught, missed, masked, no_effect, and caught % of the defects the
    gate could see (caught + missed)."""
    df = pd.DataFrame([d.__dict__ for d in detections])
    if df.empty:
        columns = ["kind", "injected", "caught", "missed", "masked", "no_effect", "caught_%"]
        return pd.DataFrame(columns=columns)
    counts = pd.crosstab(df["kind"], df["outcome"])
    for col in ("caught", "missed", "masked", "no_effect"):
        if col not in counts:
            counts[col] = 0
    table = counts[["caught", "missed", "masked", "no_effect"]].copy()
    table.insert(0, "injected", counts.sum(axis=1))
    seen = table["caught"] + table["missed"]
    table["caught_%"] = (100 * table["caught"] / seen.where(seen > 0)).round(1)
    return table.reset_index()
