"""The great-expectations suites: one spec per expectation, run by GE and mirrored as row masks.

Each `Rule` is the single definition of one check. GE evaluates it on the whole table (the
verdict and the Data Docs); `Rule.mask` evaluates the same rule row by row in pandas, so the
gate can name which samples failed which expectation without asking GE for a million-row
index list.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from modalops import schema
from modalops.config.validate import ValidateConfig

Kind = Literal["between", "in_set", "not_null"]

CATALOG_MODALITIES = (*schema.MODALITIES, "labels", "clock")
CATALOG_COLUMNS = (
    "session_id",
    "modality",
    "key",
    "uri",
    "content_hash",
    "n_bytes",
    "duration_s",
    "sample_rate",
    "n_items",
    "status",
    "reason",
)


@dataclass(frozen=True)
class Rule:
    """One column expectation. `mostly` is the share of non-null rows that must pass."""

    check: str
    column: str
    kind: Kind
    modality: str | None = None  # which payload a failure blames (None: the sample as a whole)
    min_value: float | None = None
    max_value: float | None = None
    value_set: tuple[Any, ...] = ()
    mostly: float = 1.0
    notes: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def expected(self) -> str:
        if self.kind == "in_set":
            vals = ", ".join(map(str, self.value_set))
            return f"{self.column} in {{{vals}}}"
        if self.kind == "not_null":
            return f"{self.column} not null"
        low = "-inf" if self.min_value is None else f"{self.min_value:g}"
        high = "inf" if self.max_value is None else f"{self.max_value:g}"
        return f"{self.column} in [{low}, {high}]"

    def mask(self, df: pd.DataFrame) -> np.ndarray:
        """True where a row breaks the rule; nulls pass (GE column-map semantics) except not_null."""
        if self.column not in df.columns:
            return np.zeros(len(df), dtype=bool)
        col = df[self.column]
        null = col.isna().to_numpy()
        if self.kind == "not_null":
            return null
        if self.kind == "in_set":
            bad = ~col.isin(list(self.value_set)).to_numpy(dtype=bool, na_value=False)
            return bad & ~null
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = np.zeros(len(df), dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.min_value is not None:
                bad |= values < self.min_value
            if self.max_value is not None:
                bad |= values > self.max_value
        return bad & ~null

    def to_gx(self):
        import great_expectations.expectations as gxe

        meta = {"check": self.check, "notes": self.notes} if self.notes else {"check": self.check}
        if self.kind == "in_set":
            return gxe.ExpectColumnValuesToBeInSet(
                column=self.column, value_set=list(self.value_set), mostly=self.mostly, meta=meta
            )
        if self.kind == "not_null":
            return gxe.ExpectColumnValuesToNotBeNull(
                column=self.column, mostly=self.mostly, meta=meta
            )
        return gxe.ExpectColumnValuesToBeBetween(
            column=self.column,
            min_value=self.min_value,
            max_value=self.max_value,
            mostly=self.mostly,
            meta=meta,
        )


def sample_rules(cfg: ValidateConfig) -> list[Rule]:
    """Per-sample expectations on the sample-stats table; a row breaking any one is rejected."""
    mostly = 1.0 - cfg.max_bad_fraction
    width, height = cfg.image_size
    tol_a, tol_v = cfg.audio_duration_tolerance, cfg.vibration_rate_tolerance

    def r(check, column, kind, modality, **kw) -> Rule:
        return Rule(check=check, column=column, kind=kind, modality=modality, mostly=mostly, **kw)

    return [
        r("image_decodable", "image_decodable", "in_set", "camera", value_set=(True,)),
        r("image_width", "image_width", "between", "camera", min_value=width, max_value=width),
        r("image_height", "image_height", "between", "camera", min_value=height, max_value=height),
        r(
            "image_brightness",
            "brightness",
            "between",
            "camera",
            min_value=cfg.brightness_range[0],
            max_value=cfg.brightness_range[1],
        ),
        r("image_blur", "blur", "between", "camera", min_value=cfg.min_blur),
        r("audio_decodable", "audio_decodable", "in_set", "audio", value_set=(True,)),
        r(
            "audio_rate",
            "audio_rate",
            "between",
            "audio",
            min_value=cfg.audio_rate,
            max_value=cfg.audio_rate,
        ),
        r(
            "audio_duration",
            "audio_duration_ratio",
            "between",
            "audio",
            min_value=1 - tol_a,
            max_value=1 + tol_a,
            notes="clip duration / window length",
        ),
        r(
            "audio_clipping",
            "audio_clip_fraction",
            "between",
            "audio",
            max_value=cfg.max_clip_fraction,
        ),
        r(
            "audio_rms",
            "audio_rms",
            "between",
            "audio",
            min_value=cfg.audio_rms_range[0],
            max_value=cfg.audio_rms_range[1],
        ),
        r("audio_no_nan", "audio_nan", "in_set", "audio", value_set=(False,)),
        r("vibration_decodable", "vib_decodable", "in_set", "vibration", value_set=(True,)),
        r(
            "vibration_rate",
            "vib_rate",
            "between",
            "vibration",
            min_value=cfg.vibration_rate_hz * (1 - tol_v),
            max_value=cfg.vibration_rate_hz * (1 + tol_v),
            notes="rows / window length",
        ),
        r(
            "vibration_nan_fraction",
            "vib_nan_fraction",
            "between",
            "vibration",
            max_value=cfg.max_vibration_nan_fraction,
        ),
        r("vibration_min", "vib_min", "between", "vibration", min_value=-cfg.vibration_abs_max),
        r("vibration_max", "vib_max", "between", "vibration", max_value=cfg.vibration_abs_max),
        r("vibration_flat_channels", "vib_flat_channels", "between", "vibration", max_value=0),
        r("text_utf8", "text_valid_utf8", "in_set", "notes", value_set=(True,)),
        r("text_length", "text_len", "between", "notes", max_value=cfg.max_text_len),
        r("label_in_set", "label", "in_set", None, value_set=tuple(schema.LABELS)),
        r(
            "label_present",
            "unlabelled",
            "in_set",
            None,
            value_set=(False,),
            notes="null label only on windows marked boundary",
        ),
        r("any_modality_present", "n_present", "between", None, min_value=1),
        r(
            "align_confidence",
            "align_confidence",
            "between",
            None,
            min_value=cfg.min_align_confidence,
        ),
    ]


def catalog_view(catalog: pd.DataFrame) -> pd.DataFrame:
    """The catalog with per-modality columns (null elsewhere), so every GE rule is a plain
    column expectation; checks of stream contents apply to streams ingest accepted."""
    view = catalog.copy()
    ok = (
        view["status"].eq("ok").to_numpy() if "status" in view.columns else np.ones(len(view), bool)
    )
    modality = view["modality"].astype("string") if "modality" in view.columns else None
    for name in ("audio", "vibration"):
        sel = ok & (modality == name).to_numpy(dtype=bool, na_value=False)
        rate = pd.to_numeric(view.get("sample_rate"), errors="coerce")
        view[f"{name}_sample_rate"] = rate.where(sel) if rate is not None else np.nan
    for name in ("duration_s", "nan_fraction"):
        if name in view.columns:
            view[f"ok_{name}"] = pd.to_numeric(view[name], errors="coerce").where(ok)
    reason = view["reason"] if "reason" in view.columns else pd.Series(None, index=view.index)
    quarantined = view["status"].eq("quarantined") if "status" in view.columns else False
    view["quarantined_without_reason"] = (
        quarantined & (reason.isna() | reason.astype("string").str.strip().eq(""))
    ).astype(bool)
    return view


def catalog_rules(cfg: ValidateConfig) -> list[Rule]:
    """Stream-level expectations on the ingest catalog (every stream must pass)."""
    tol = cfg.vibration_rate_tolerance
    return [
        Rule("catalog_session_id", "session_id", "not_null"),
        Rule("catalog_modality", "modality", "in_set", value_set=CATALOG_MODALITIES),
        Rule("catalog_status", "status", "in_set", value_set=("ok", "quarantined")),
        Rule(
            "catalog_quarantine_reason",
            "quarantined_without_reason",
            "in_set",
            value_set=(False,),
            notes="every quarantined stream says why",
        ),
        Rule(
            "catalog_audio_rate",
            "audio_sample_rate",
            "between",
            "audio",
            min_value=cfg.audio_rate,
            max_value=cfg.audio_rate,
        ),
        Rule(
            "catalog_vibration_rate",
            "vibration_sample_rate",
            "between",
            "vibration",
            min_value=cfg.vibration_rate_hz * (1 - tol),
            max_value=cfg.vibration_rate_hz * (1 + tol),
        ),
        Rule("catalog_duration", "ok_duration_s", "between", min_value=0.0, max_value=86400.0),
        Rule(
            "catalog_nan_fraction",
            "ok_nan_fraction",
            "between",
            min_value=0.0,
            max_value=cfg.max_stream_nan_fraction,
        ),
    ]


# Checks whose failure means the table cannot be trusted at all; the rest default to 'warn'
# at stream level because the samples they affect are counted in the bad-sample fraction.
CATALOG_FAIL_CHECKS = {
    "catalog_columns",
    "catalog_session_id",
    "catalog_modality",
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

    File-backed (not ephemeral) because the Data Docs site is built from stored validation
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
        """Build the Data Docs site and copy it to `target` (index.html at its root)."""
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
