"""Leaf result types of the validate stage: rules, check rows, the verdict and the gate's error.

Every check module (suites, drift, label check, gate, the kinds' checks) imports from here and
from nowhere else in the stage, so no two check modules import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from modalops.config.validate import ValidateConfig

RuleKind = Literal["between", "in_set", "not_null"]
STAGE = "validate"


@dataclass(frozen=True)
class Rule:
    """One column expectation. `mostly` is the share of non-null rows that must pass.

    GE evaluates it on the whole table (the verdict and the Data Docs); `mask` evaluates the
    same rule row by row in pandas, so the gate can name which samples failed which rule.
    """

    check: str
    column: str
    kind: RuleKind
    stream: str | None = None  # which stream a failure blames (None: the sample as a whole)
    min_value: float | None = None
    max_value: float | None = None
    value_set: tuple[Any, ...] = ()
    mostly: float = 1.0
    note: str = ""

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

        meta = {"check": self.check, "note": self.note} if self.note else {"check": self.check}
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


@dataclass
class CheckResult:
    """One line of the verdict table."""

    check: str
    table: str  # 'catalog' | 'samples' | 'dataset' | 'drift'
    observed: str
    expected: str
    severity: str  # 'fail' | 'warn'
    passed: bool
    details: str = ""


@dataclass
class ValidationResult:
    """The gate's verdict, the samples it rejects, and everything needed to explain both."""

    checks: list[CheckResult]
    passed: bool
    rejected: pd.DataFrame  # session_id, window_index, reason
    quarantine: pd.DataFrame  # modalops.quarantine columns, stage 'validate'
    bad_fraction: float
    data_docs_dir: Path | None = None
    stats: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)  # summarize_for_reference(stats)
    enforced: bool = True  # ValidateConfig.fail_on_error: False reports failures without stopping

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed and c.severity == "fail"]

    def table_markdown(self, only_failing: bool = False) -> str:
        """The verdict as a markdown table: check | observed | expected | severity | result."""
        lines = [
            "| check | observed | expected | severity | result |",
            "|---|---|---|---|---|",
        ]
        for c in self.checks:
            if only_failing and c.passed:
                continue
            result = "pass" if c.passed else ("FAIL" if c.severity == "fail" else "warn")
            cells = [c.check, c.observed, c.expected, c.severity, result]
            lines.append("| " + " | ".join(s.replace("|", "/") for s in cells) + " |")
        return "\n".join(lines)


class ValidationGateError(RuntimeError):
    """The gate failed; the message is the table of failing 'fail' checks."""

    def __init__(self, result: ValidationResult):
        self.result = result
        n = len(result.failures)
        super().__init__(
            f"validation gate failed: {n} check(s) with severity 'fail' did not pass "
            f"(bad-sample fraction {100 * result.bad_fraction:.2f}%)\n"
            + result.table_markdown(only_failing=True)
        )


def raise_for_gate(result: ValidationResult) -> None:
    """Raise ValidationGateError when a check with severity 'fail' failed (and the gate is enforced)."""
    if not result.passed and result.enforced:
        raise ValidationGateError(result)


def verdict_passed(checks: list[CheckResult]) -> bool:
    return not any(not c.passed and c.severity == "fail" for c in checks)


def severity_for(check: str, default: str, cfg: ValidateConfig) -> str:
    """Config override for `check` (exact name first, then the longest matching 'prefix*')."""
    if check in cfg.severity:
        return cfg.severity[check]
    prefixes = [k for k in cfg.severity if k.endswith("*") and check.startswith(k[:-1])]
    if prefixes:
        return cfg.severity[max(prefixes, key=len)]
    return default


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"
