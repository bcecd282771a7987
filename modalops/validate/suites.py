"""The great-expectations suites, assembled from the dataset spec: one Rule per expectation.

Each stream's kind contributes its rules (`modalops/kinds/<kind>/checks.py`): per-window rules on
the sample-stats table and whole-stream rules on the catalog. GE evaluates every rule on the whole
table (the verdict and the Data Docs); `Rule.mask` evaluates the same rule row by row in pandas,
so the gate can name which samples failed which expectation without asking GE for a million-row
index list.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modalops.config.validate import ValidateConfig
from modalops.dataset.columns import stat_column
from modalops.validate.result import Rule

# The catalog contract (ingest's output); metadata columns follow and are not required here.
CATALOG_COLUMNS = (
    "session_id", "stream", "kind", "key", "uri", "content_hash", "n_bytes", "duration_s",
    "sample_rate", "n_items", "t_first", "t_last", "nan_fraction", "n_bad_items", "width",
    "height", "n_channels", "flat_channels", "status", "reason",
)  # fmt: skip
SESSION_FILES = ("clock", "labels")  # catalog rows of a session's own files (not streams)
# Catalog values a kind's catalog rules may use, as `<stream>__<value>` in the catalog view.
CATALOG_VALUES = (
    "duration_s", "sample_rate", "n_items", "nan_fraction", "n_bad_items", "width", "height",
    "n_channels", "flat_channels",
)  # fmt: skip


def sample_rules(spec, cfg: ValidateConfig) -> list[Rule]:
    """Per-sample expectations on the sample-stats table; a row breaking any one is rejected.

    Every stream's kind's rules (with the stream's params and checks from the spec), then the
    rules about the sample as a whole: its label, some stream present, alignment confidence.
    """
    mostly = 1.0 - cfg.max_bad_fraction
    rules: list[Rule] = []
    for stream in spec.stream_names:
        kind = spec.kind_of(stream)
        rules += kind.checks.sample_rules(stream, spec.params(stream), spec.checks(stream))
    rules += [
        Rule("label_in_set", "label", "in_set", value_set=tuple(spec.labels.classes)),
        Rule("label_present", "unlabelled", "in_set", value_set=(False,),
             note="null label only on windows marked boundary"),
        Rule("any_stream_present", "n_present", "between", min_value=1),
        Rule("align_confidence", "align_confidence", "between",
             min_value=cfg.min_align_confidence),
    ]  # fmt: skip
    return [dataclasses.replace(r, mostly=mostly) for r in rules]


def catalog_view(catalog: pd.DataFrame, spec) -> pd.DataFrame:
    """The catalog with per-stream columns `<stream>__<value>` (null on other rows), so every
    GE rule is a plain column expectation; checks of stream contents apply to streams ingest
    accepted."""
    view = catalog.copy()
    n = len(view)
    ok = (
        view["status"].eq("ok").to_numpy(dtype=bool, na_value=False)
        if "status" in view
        else (np.ones(n, bool))
    )
    streams = view["stream"].astype("string") if "stream" in view.columns else None
    for stream in spec.stream_names:
        sel = ok & (
            (streams == stream).to_numpy(dtype=bool, na_value=False)
            if streams is not None
            else np.zeros(n, bool)
        )
        for value in CATALOG_VALUES:
            col = pd.to_numeric(view[value], errors="coerce") if value in view else None
            view[stat_column(stream, value)] = (
                col.where(sel) if col is not None else pd.Series(np.nan, index=view.index)
            )
        with np.errstate(all="ignore"):
            items = view[stat_column(stream, "n_items")]
            view[stat_column(stream, "bad_item_fraction")] = view[
                stat_column(stream, "n_bad_items")
            ] / items.where(items > 0)
    if "duration_s" in view.columns:
        view["ok_duration_s"] = pd.to_numeric(view["duration_s"], errors="coerce").where(ok)
    reason = view["reason"] if "reason" in view.columns else pd.Series(None, index=view.index)
    quarantined = view["status"].eq("quarantined") if "status" in view.columns else False
    view["quarantined_without_reason"] = (
        quarantined & (reason.isna() | reason.astype("string").str.strip().eq(""))
    ).astype(bool)
    return view


def catalog_rules(spec, cfg: ValidateConfig) -> list[Rule]:
    """Stream-level expectations on the ingest catalog (every stream must pass)."""
    kinds = sorted({s.kind for s in spec.streams.values()} | set(SESSION_FILES))
    rules = [
        Rule("catalog_session_id", "session_id", "not_null"),
        Rule("catalog_stream", "stream", "in_set", value_set=(*spec.stream_names, *SESSION_FILES)),
        Rule("catalog_kind", "kind", "in_set", value_set=tuple(kinds)),
        # absent: a labels row of a session nobody labelled (or reviewed) yet
        Rule("catalog_status", "status", "in_set", value_set=("ok", "quarantined", "absent")),
        Rule("catalog_quarantine_reason", "quarantined_without_reason", "in_set",
             value_set=(False,), note="every quarantined stream says why"),
        Rule("catalog_duration", "ok_duration_s", "between", min_value=0.0, max_value=86400.0),
    ]  # fmt: skip
    for stream in spec.stream_names:
        kind = spec.kind_of(stream)
        rules += kind.checks.catalog_rules(stream, spec.params(stream), spec.checks(stream))
    return rules


# Checks whose failure means the table cannot be trusted at all; the rest default to 'warn'
# at stream level because the samples they affect are counted in the bad-sample fraction.
CATALOG_FAIL_CHECKS = {
    "catalog_columns",
    "catalog_session_id",
    "catalog_stream",
    "catalog_kind",
    "catalog_status",
    "catalog_quarantine_reason",
}


@dataclass
class GXOutcome:
    """What GE said about one expectation."""

    check: str
    success: bool
    element_count: int
    unexpected_count: int
    unexpected_percent: float
    missing_count: int
    observed_value: Any = None
    exception: str | None = None


def _quiet_gx() -> None:
    # GE draws a tqdm bar per validation and logs at INFO; in a pipeline log both are noise.
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in (
        "great_expectations",
        "great_expectations.core",
        "great_expectations.data_context",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)


class GXRunner:
    """A file-backed GE context in a directory: suites, validations and Data Docs live there.

    File-backed (not ephemeral) because the Data Docs are built from stored validation
    results; creating one costs ~20 ms, the `great_expectations` import ~3 s (paid once).
    """

    def __init__(self, root: Path | None = None):
        _quiet_gx()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._tmp = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="modalops-gx-")
            root = Path(self._tmp.name)
        self.root = Path(root)
        self.context = gx.get_context(mode="file", project_root_dir=str(self.root))
        # Older/newer GE may refuse the setting; TQDM_DISABLE above still applies then.
        with contextlib.suppress(Exception):
            self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self.context.data_sources.add_or_update_pandas("modalops")

    def run(self, name: str, df: pd.DataFrame, expectations: list) -> list[GXOutcome]:
        """Validate `df` against a suite named `name`; one outcome per expectation, in order."""
        import great_expectations as gx

        asset = self._source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(f"{name}-all")
        suite = self.context.suites.add(gx.ExpectationSuite(name=name))
        for exp in expectations:
            suite.add_expectation(exp)
        vd = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{name}-validation", data=batch, suite=suite)
        )
        res = vd.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")
        outcomes = []
        for item in res.results:
            cfg = item.expectation_config
            result = item.result or {}
            exc = item.exception_info or {}
            message = exc.get("exception_message") if exc.get("raised_exception") else None
            outcomes.append(
                GXOutcome(
                    check=(cfg.meta or {}).get("check", cfg.type),
                    success=bool(item.success),
                    element_count=int(result.get("element_count") or len(df)),
                    unexpected_count=int(result.get("unexpected_count") or 0),
                    unexpected_percent=float(result.get("unexpected_percent") or 0.0),
                    missing_count=int(result.get("missing_count") or 0),
                    observed_value=result.get("observed_value"),
                    exception=message,
                )
            )
        return outcomes

    def build_docs(self, target: Path) -> Path:
        """Build the Data Docs and copy them to `target` (index.html at its root)."""
        import shutil

        sites = self.context.build_data_docs()
        site_dir = self.root / "gx" / "uncommitted" / "data_docs" / "local_site"
        if not site_dir.exists() and sites:
            url = next(iter(sites.values()))
            site_dir = Path(url.removeprefix("file://")).parent
        target = Path(target)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(site_dir, target)
        return target

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
