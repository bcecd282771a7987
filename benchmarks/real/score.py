"""Scores the platform's own alignment report against each case's truth files (the scorer only).

The platform runs ingest and the align stage on `raw/` exactly as a pipeline run would and writes
`align_report.parquet`; this module reads that report back, and only here are the truth clocks
opened, to say how far each stream's clock is from the truth at the session's start and end.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmarks.real.compose import CaseOutput, Clock, read_truth
from modalops.align import align_dataset
from modalops.config.align import AlignConfig
from modalops.config.data import IngestConfig
from modalops.dataset.spec import load_spec_file
from modalops.ingest import ingest_recordings
from modalops.store import LocalStore


def run_alignment(case: CaseOutput, work: Path, cfg: AlignConfig | None = None) -> pd.DataFrame:
    """Ingest and align the case as the pipeline does; the align report as the platform wrote it."""
    raw = LocalStore(case.raw)
    spec = load_spec_file(case.raw / "dataset.yaml")
    ingested = ingest_recordings(raw, spec, IngestConfig(raw_uri=str(case.raw)))
    out = LocalStore(work / case.name)
    result = align_dataset(raw, spec, ingested.catalog, cfg or AlignConfig(), out, "run",
                           ingested.quarantine)  # fmt: skip
    return pd.read_parquet(io.BytesIO(out.get_bytes(result.report_key)))


def score(case: CaseOutput, report: pd.DataFrame, min_confidence: float) -> pd.DataFrame:
    """One row per estimated stream: the platform's clock, the truth, the error, how sure it was."""
    rows = []
    for r in report[report["stream"].isin(case.estimated)].itertuples():
        true = read_truth(case.truth, str(r.session_id))[str(r.stream)]
        est = Clock(float(r.offset_s), float(r.drift_ppm)) if r.usable else None
        end = float(r.windows_total) if r.windows_total else 30.0  # ~ seconds at 1 s hops
        err = (
            max(abs(est.to_device(t) - true.to_device(t)) for t in (0.0, end))
            if est is not None and np.isfinite(est.offset_s)
            else np.nan
        )
        conf = float(r.confidence) if pd.notna(r.confidence) else 0.0
        rows.append({
            "case": case.name, "session_id": r.session_id, "stream": r.stream,
            "method": r.method, "confidence": conf,
            "confident": r.method == "estimate" and conf >= min_confidence,
            "error_s": err, "within": bool(err <= case.tolerance_s), "reason": r.fallback_reason,
            "cue": getattr(r, "cue", None),
        })  # fmt: skip
    return pd.DataFrame(rows)


def summary(case: CaseOutput, scored: pd.DataFrame) -> dict:
    """The alignment figures of one case: within tolerance, reliability, precision."""
    conf = scored[scored["confident"]]
    return {
        "case": case.name,
        "streams": len(scored),
        "within": int(scored["within"].sum()),
        "confident": len(conf),
        "confident_within": int(conf["within"].sum()),
        "median_error_s": float(conf["error_s"].median()) if len(conf) else np.nan,
        "tolerance_s": case.tolerance_s,
        "quarter_period_s": case.slowest_period_s / 4,
    }


def swapped(case: CaseOutput, out: Path) -> CaseOutput:
    """A control: the case with every estimated stream's file moved to the next session, so no
    stream belongs with its reference. Any confident estimate on it is a confident wrong one."""
    root = out / f"{case.name}-swapped"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(case.raw, root / "raw")
    spec = yaml.safe_load((root / "raw" / "dataset.yaml").read_text())
    sids = [str(s) for s in case.sessions["session_id"]]
    for name in case.estimated:
        files = [root / "raw" / "sessions" / sid / spec["streams"][name]["path"] for sid in sids]
        data = [f.read_bytes() for f in files]
        for i, f in enumerate(files):
            f.write_bytes(data[(i + 1) % len(files)])
    return CaseOutput(**{**case.__dict__, "name": f"{case.name}-swapped", "raw": root / "raw"})
