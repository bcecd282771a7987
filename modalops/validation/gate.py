"""The validation gate: run the suites, add dataset-level checks, reject bad samples, decide."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from modalops import quarantine, schema
from modalops.config.validate import ValidateConfig
from modalops.validation import label_noise
from modalops.validation.drift import drift_checks
from modalops.validation.stats import hamming, sample_stats, summarize_for_reference
from modalops.validation.suites import (
    CATALOG_COLUMNS,
    CATALOG_FAIL_CHECKS,
    GXOutcome,
    GXRunner,
    Rule,
    catalog_rules,
    catalog_view,
    sample_rules,
)

STAGE = "validate"


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


def severity_for(check: str, default: str, cfg: ValidateConfig) -> str:
    """Config override for `check` (exact name first, then the longest matching 'prefix*')."""
    if check in cfg.severity:
        return cfg.severity[check]
    prefixes = [k for k in cfg.severity if k.endswith("*") and check.startswith(k[:-1])]
    if prefixes:
        return cfg.severity[max(prefixes, key=len)]
    return default


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _outcome_to_check(
    rule: Rule, outcome: GXOutcome, table: str, severity: str, denominator: int
) -> CheckResult:
    judged = outcome.element_count - outcome.missing_count
    if outcome.exception:
        observed, details = "error", outcome.exception
    else:
        observed = f"{outcome.unexpected_count} of {judged} bad"
        if table == "samples":
            observed += f" ({_pct(outcome.unexpected_count / max(denominator, 1))} of samples)"
        details = rule.notes
    expected = rule.expected
    if rule.mostly < 1.0:
        expected += f" for ≥{100 * rule.mostly:g}%"
    return CheckResult(rule.check, table, observed, expected, severity, outcome.success, details)


# ---- dataset-level checks (pandas) -------------------------------------------------------


def class_balance_check(stats: pd.DataFrame, cfg: ValidateConfig) -> CheckResult:
    labels = stats["label"].dropna()
    labels = labels[labels.isin(schema.LABELS)]
    shares = labels.value_counts(normalize=True).reindex(list(schema.LABELS), fill_value=0.0)
    worst = shares.idxmin() if len(labels) else "-"
    low = float(shares.min()) if len(labels) else 0.0
    details = ", ".join(f"{k} {_pct(v)}" for k, v in shares.items())
    return CheckResult(
        "min_class_fraction",
        "dataset",
        f"{worst} {_pct(low)}",
        f"every class ≥ {_pct(cfg.min_class_fraction)}",
        severity_for("min_class_fraction", "fail", cfg),
        bool(len(labels)) and low >= cfg.min_class_fraction,
        details,
    )


def subgroup_checks(stats: pd.DataFrame, cfg: ValidateConfig) -> list[CheckResult]:
    checks = []
    for col in cfg.subgroup_cols:
        name = f"min_samples_per_{col}"
        if col not in stats.columns or stats[col].isna().all():
            checks.append(
                CheckResult(
                    name, "dataset", "column missing", f"≥ {cfg.min_samples_per_subgroup} each",
                    severity_for(name, severity_for("min_samples_per_subgroup", "fail", cfg), cfg),
                    False, f"samples carry no {col!r} metadata",
                )
            )  # fmt: skip
            continue
        counts = stats[col].fillna("<missing>").value_counts()
        small = counts[counts < cfg.min_samples_per_subgroup]
        worst = counts.idxmin()
        checks.append(
            CheckResult(
                name,
                "dataset",
                f"{worst}: {int(counts.min())}",
                f"≥ {cfg.min_samples_per_subgroup} each",
                severity_for(name, severity_for("min_samples_per_subgroup", "fail", cfg), cfg),
                small.empty,
                ", ".join(f"{k}={v}" for k, v in counts.items()),
            )
        )
    return checks


def completeness_check(stats: pd.DataFrame, cfg: ValidateConfig) -> CheckResult:
    cols = [schema.PRESENCE_COLUMNS[m] for m in cfg.required_modalities]
    complete = stats[cols].to_numpy(bool).all(axis=1) if len(stats) else np.zeros(0, bool)
    share = float(complete.mean()) if len(complete) else 0.0
    per = ", ".join(f"{c} {_pct(float(stats[c].mean()))}" for c in cols) if len(stats) else ""
    return CheckResult(
        "completeness",
        "dataset",
        _pct(share),
        f"≥ {_pct(cfg.min_completeness)} with {'+'.join(cfg.required_modalities)}",
        severity_for("completeness", "fail", cfg),
        share >= cfg.min_completeness,
        per,
    )


def align_report_checks(report: pd.DataFrame, cfg: ValidateConfig) -> list[CheckResult]:
    """Per-stream alignment quality: estimated confidence and plausible drift."""
    checks = []
    if "confidence" in report.columns:
        conf = pd.to_numeric(report["confidence"], errors="coerce")
        low = report[conf < cfg.min_align_confidence]
        names = [f"{r.session_id}/{r.stream}" for r in low.itertuples()][:10]
        checks.append(
            CheckResult(
                "align_stream_confidence",
                "dataset",
                f"{len(low)} of {int(conf.notna().sum())} estimated streams low",
                f"confidence ≥ {cfg.min_align_confidence:g}",
                severity_for("align_stream_confidence", "warn", cfg),
                low.empty,
                ", ".join(names),
            )
        )
    if "drift_ppm" in report.columns:
        drift = pd.to_numeric(report["drift_ppm"], errors="coerce").abs()
        high = report[drift > cfg.max_abs_drift_ppm]
        checks.append(
            CheckResult(
                "align_drift",
                "dataset",
                f"max |drift| {drift.max():.1f} ppm" if drift.notna().any() else "n/a",
                f"|drift_ppm| ≤ {cfg.max_abs_drift_ppm:g}",
                severity_for("align_drift", "fail", cfg),
                high.empty,
                ", ".join(f"{r.session_id}/{r.stream}" for r in high.itertuples()),
            )
        )
    return checks


def _near_duplicate_pairs(a: np.ndarray, b: np.ndarray, max_dist: int) -> np.ndarray:
    """Boolean mask over `b`: which hashes lie within `max_dist` bits of some hash in `a`.

    Multi-index hashing (Norouzi et al. 2012): split 64 bits into max_dist+1 bands; two
    hashes within max_dist bits agree exactly on at least one band, so only band-equal pairs
    are compared. Works on unique values, so static scenes with many equal hashes stay cheap.
    """
    hit = np.zeros(b.size, dtype=bool)
    if a.size == 0 or b.size == 0:
        return hit
    ua = np.unique(a)
    ub, inv = np.unique(b, return_inverse=True)
    n_bands = max_dist + 1
    width = 64 // n_bands
    found = np.zeros(ub.size, dtype=bool)
    for band in range(n_bands):
        shift = np.uint64(band * width)
        bits = 64 - band * width if band == n_bands - 1 else width
        mask = np.uint64((1 << bits) - 1)
        ka = pd.Series(np.arange(ua.size), index=(ua >> shift) & mask)
        kb = pd.DataFrame({"j": np.arange(ub.size), "key": (ub >> shift) & mask})
        kb = kb[~found[kb["j"].to_numpy()]]
        pairs = kb.merge(ka.rename("i"), left_on="key", right_index=True)
        if pairs.empty:
            continue
        d = hamming(ua[pairs["i"].to_numpy()], ub[pairs["j"].to_numpy()])
        close = pairs["j"].to_numpy()[d <= max_dist]
        found[close] = True
    hit = found[inv]
    return hit


def split_leak_checks(splits: pd.DataFrame, cfg: ValidateConfig | None = None) -> list[CheckResult]:
    """Leakage between splits: a session or subject in two splits; near-duplicate frames.

    `splits` has session_id, split, optionally subject, and optionally one row per sample
    with `phash` (uint64 perceptual hash of its frame) for the near-duplicate check.
    """
    cfg = cfg or ValidateConfig()
    checks = []
    for key, name in (("session_id", "session_in_one_split"), ("subject", "subject_in_one_split")):
        if key not in splits.columns:
            continue
        per = splits.dropna(subset=[key]).groupby(key)["split"].nunique()
        leaked = per[per > 1]
        detail = []
        for value in leaked.index[:10]:
            where = sorted(splits.loc[splits[key] == value, "split"].unique())
            detail.append(f"{value} in {'+'.join(where)}")
        checks.append(
            CheckResult(
                name,
                "dataset",
                f"{len(leaked)} {key} values in >1 split",
                "0",
                severity_for(name, "fail", cfg),
                leaked.empty,
                "; ".join(detail),
            )
        )
    if "frame_sha1" in splits.columns:
        frames = splits.dropna(subset=["frame_sha1"])
        per = frames.groupby("frame_sha1")["split"].nunique()
        copied = per[per > 1]
        sessions = frames.loc[frames["frame_sha1"].isin(copied.index), "session_id"].unique()
        checks.append(
            CheckResult(
                "identical_frames_across_splits",
                "dataset",
                f"{len(copied)} frames stored in more than one split",
                "0 (a byte-identical frame in two splits is a copied recording)",
                severity_for("identical_frames_across_splits", "fail", cfg),
                copied.empty,
                ", ".join(map(str, sessions[:5])),
            )
        )
    if "phash" in splits.columns:
        frames = splits.dropna(subset=["phash"])
        hashes = frames["phash"].astype("uint64").to_numpy()
        split = frames["split"].astype(str).to_numpy()
        flagged = np.zeros(len(frames), dtype=bool)
        # Every val/test frame is compared with every frame of the other splits.
        for s in ("val", "test"):
            own = split == s
            flagged[own] |= _near_duplicate_pairs(
                hashes[~own], hashes[own], cfg.near_duplicate_hamming
            )
        judged = int(np.isin(split, ("val", "test")).sum())
        share = flagged.sum() / judged if judged else 0.0
        examples = frames.loc[flagged, ["session_id", "split"]].drop_duplicates().head(5)
        checks.append(
            CheckResult(
                "near_duplicate_frames_across_splits",
                "dataset",
                f"{int(flagged.sum())} of {judged} val/test frames ({_pct(share)})",
                f"≤ {_pct(cfg.max_near_duplicate_fraction)} within "
                f"{cfg.near_duplicate_hamming} bits of a frame in another split",
                # warn by default: a fixed camera films near-identical empty scenes in every
                # session at its station, so similar frames across splits are normal there
                severity_for("near_duplicate_frames_across_splits", "warn", cfg),
                share <= cfg.max_near_duplicate_fraction,
                ", ".join(f"{r.session_id} ({r.split})" for r in examples.itertuples()),
            )
        )
    return checks


# ---- label consistency (confident learning, modalops.validation.label_noise) ------------


def label_consistency_check(
    samples: pd.DataFrame, rejected: pd.DataFrame, cfg: ValidateConfig
) -> tuple[CheckResult, pd.DataFrame]:
    """Flag windows whose label their signals contradict; (verdict row, rejection rows).

    Windows already rejected by a per-sample rule are left out (their payloads are broken, so
    they would only teach the check's model noise); so are windows without a label.
    """
    name = "label_consistency"
    severity = severity_for(name, "fail", cfg)
    expected = f"≤ {_pct(cfg.max_bad_fraction)} of labelled windows contradicted by their signals"
    empty = pd.DataFrame(columns=["session_id", "window_index", "modality", "reason"])
    payloads = [schema.PAYLOAD_COLUMNS[m] for m in cfg.label_check_modalities]
    if not any(c in samples.columns for c in payloads):
        return CheckResult(
            name, "samples", "skipped: no payload columns", expected, severity, True
        ), empty
    bad = set(zip(rejected["session_id"], rejected["window_index"], strict=True))
    judged = samples[~_key_mask(samples, bad)].reset_index(drop=True)
    n_labelled = int(judged["label"].isin(schema.LABELS).sum())
    if n_labelled < cfg.label_check_min_windows:
        return CheckResult(
            name, "samples",
            f"skipped: {n_labelled} labelled windows < label_check_min_windows "
            f"{cfg.label_check_min_windows}",
            expected, severity, True,
        ), empty  # fmt: skip
    result = label_noise.check_labels(
        judged,
        folds=cfg.label_check_folds,
        c=cfg.label_check_c,
        rounds=cfg.label_check_rounds,
        modalities=list(cfg.label_check_modalities),
    )
    n_judged = int((result.given >= 0).sum())
    if result.folds == 0:
        return CheckResult(
            name, "samples", f"skipped: {n_judged} labelled windows in < 2 sessions or classes",
            expected, severity, True,
        ), empty  # fmt: skip
    flagged = label_noise.flagged_rows(judged, result)
    share = len(flagged) / max(n_judged, 1)
    per_class = pd.Series([schema.LABELS[i] for i in result.given[result.flagged]]).value_counts()
    thresholds = ", ".join(
        f"{k} {t:.2f}" for k, t in zip(schema.LABELS, result.thresholds, strict=True)
    )
    details = (
        f"{result.folds} folds by session, {cfg.label_check_rounds} round(s); t_j {thresholds}"
    )
    if len(per_class):
        details += "; flagged " + ", ".join(f"{k} {v}" for k, v in per_class.items())
    return CheckResult(
        name,
        "samples",
        f"{len(flagged)} of {n_judged} flagged ({_pct(share)} of labelled windows)",
        expected,
        severity,
        share <= cfg.max_bad_fraction,
        details,
    ), flagged


# ---- rejection and the bad-sample fraction -----------------------------------------------


def reject_samples(stats: pd.DataFrame, rules: list[Rule]) -> pd.DataFrame:
    """Rows breaking any per-sample rule: session_id, window_index, modality, reason."""
    masks = {rule.check: rule.mask(stats) for rule in rules}
    any_bad = np.zeros(len(stats), dtype=bool)
    for m in masks.values():
        any_bad |= m
    idx = np.flatnonzero(any_bad)
    reasons: list[list[str]] = [[] for _ in idx]
    modality: list[str | None] = [None] * idx.size
    for rule in rules:
        sub = masks[rule.check][idx]
        if not sub.any():
            continue
        values = stats[rule.column].to_numpy()[idx] if rule.column in stats.columns else None
        for k in np.flatnonzero(sub):
            value = values[k] if values is not None else None
            shown = f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)
            reasons[k].append(f"{rule.check}: {rule.column}={shown}, expected {rule.expected}")
            if modality[k] is None:
                modality[k] = rule.modality
    return pd.DataFrame(
        {
            "session_id": stats["session_id"].to_numpy()[idx],
            "window_index": stats["window_index"].to_numpy()[idx].astype("int64"),
            "modality": pd.array(modality, dtype="string"),
            "reason": ["; ".join(r) for r in reasons],
        }
    )


def _quarantine_losses(catalog: pd.DataFrame, stats: pd.DataFrame) -> tuple[int, int, list[str]]:
    """Samples lost or damaged by streams ingest quarantined: (lost, degraded, notes).

    A quarantined session (no samples at all) loses about duration / window-length samples;
    a quarantined stream of a session that still has samples degrades those of its samples
    that miss that modality.
    """
    if not {"session_id", "modality", "status"} <= set(catalog.columns):
        return 0, 0, []
    q = catalog[catalog["status"].eq("quarantined")]
    if q.empty:
        return 0, 0, []
    have = set(stats["session_id"].astype(str))
    window = float(np.nanmedian(stats["window_s"])) if len(stats) else np.nan
    per_session = stats.groupby("session_id").size()
    fallback = float(per_session.median()) if len(per_session) else 0.0
    lost = degraded = 0
    notes = []
    durations = pd.to_numeric(catalog.get("duration_s"), errors="coerce")
    for sid, rows in q.groupby(q["session_id"].astype(str)):
        if sid not in have:
            dur = durations[catalog["session_id"].astype(str) == sid].max()
            est = (
                dur / window
                if np.isfinite(dur) and np.isfinite(window) and window > 0
                else fallback
            )
            lost += int(round(est))
            notes.append(f"{sid}: session lost (~{int(round(est))} samples)")
            continue
        sel = stats["session_id"].astype(str) == sid
        missing = np.zeros(int(sel.sum()), dtype=bool)
        for modality in rows["modality"].astype(str):
            col = schema.PRESENCE_COLUMNS.get(modality)
            if col in stats.columns:
                missing |= ~stats.loc[sel, col].to_numpy(bool)
        if missing.any():
            degraded += int(missing.sum())
            notes.append(f"{sid}: {'+'.join(rows['modality'].astype(str))} quarantined")
    return lost, degraded, notes


# ---- the gate ----------------------------------------------------------------------------


def _session_splits(splits: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Per-sample split assignment with subject and phash, from a per-session or per-sample table."""
    cols = ["session_id", "window_index"] if "window_index" in splits.columns else ["session_id"]
    keep = [c for c in (*cols, "split", "subject", "phash", "frame_sha1") if c in splits.columns]
    right = splits[keep].copy()
    right["session_id"] = right["session_id"].astype("string")
    per_sample = ["session_id", "window_index", "subject", "phash", "frame_sha1"]
    left = stats[[c for c in per_sample if c in stats.columns]].copy()
    left = left.drop(
        columns=[c for c in per_sample[2:] if c in right.columns and c in left.columns]
    )
    merged = left.merge(right.drop_duplicates(subset=cols), on=cols, how="inner")
    # Sessions with no samples still count for the session / subject checks.
    extra = right[~right["session_id"].isin(merged["session_id"])]
    return pd.concat([merged, extra], ignore_index=True)


def validate_dataset(
    catalog: pd.DataFrame,
    samples: pd.DataFrame,
    cfg: ValidateConfig,
    splits: pd.DataFrame | None = None,
    align_report: pd.DataFrame | None = None,
    reference_stats: pd.DataFrame | None = None,
    docs_dir: Path | None = None,
    stats: pd.DataFrame | None = None,
) -> ValidationResult:
    """Run every check on the catalog and the aligned samples and decide the gate.

    `stats` may be passed to skip decoding (the benchmark does); otherwise it is computed
    with `sample_stats(samples)`. `reference_stats` is the `summarize_for_reference` table
    saved with the champion's dataset version.
    """
    if stats is None:
        stats = sample_stats(samples, flat_std=cfg.flat_std)
    checks: list[CheckResult] = []
    runner = GXRunner()
    try:
        # -- catalog suite --
        import great_expectations.expectations as gxe

        view = catalog_view(catalog)
        missing = [c for c in CATALOG_COLUMNS if c not in catalog.columns]
        crules = [r for r in catalog_rules(cfg) if r.column in view.columns]
        cexp = [
            gxe.ExpectTableColumnsToMatchSet(
                column_set=list(CATALOG_COLUMNS),
                exact_match=False,
                meta={"check": "catalog_columns"},
            ),
            *[r.to_gx() for r in crules],
        ]
        couts = runner.run("catalog", view, cexp)
        checks.append(
            CheckResult(
                "catalog_columns",
                "catalog",
                "all present" if not missing else f"missing {missing}",
                "columns ⊇ " + ", ".join(CATALOG_COLUMNS),
                severity_for("catalog_columns", "fail", cfg),
                couts[0].success and not missing,
            )
        )
        for rule, out in zip(crules, couts[1:], strict=True):
            default = "fail" if rule.check in CATALOG_FAIL_CHECKS else "warn"
            sev = severity_for(rule.check, default, cfg)
            checks.append(_outcome_to_check(rule, out, "catalog", sev, len(view)))
        n_q = int(view["status"].eq("quarantined").sum()) if "status" in view.columns else 0
        checks.append(
            CheckResult(
                "catalog_quarantined_streams",
                "catalog",
                f"{n_q} of {len(view)} streams",
                "0 (counted in the bad-sample fraction)",
                severity_for("catalog_quarantined_streams", "warn", cfg),
                n_q == 0,
                "; ".join(
                    f"{r.session_id}/{r.modality}: {r.reason}"
                    for r in view[view["status"].eq("quarantined")].head(10).itertuples()
                )
                if n_q
                else "",
            )
        )

        # -- sample suite --
        srules = sample_rules(cfg)
        souts = runner.run("samples", stats, [r.to_gx() for r in srules])
        for rule, out in zip(srules, souts, strict=True):
            sev = severity_for(rule.check, "fail", cfg)
            checks.append(_outcome_to_check(rule, out, "samples", sev, len(stats)))

        rejected = reject_samples(stats, srules)
        if cfg.label_check:
            check, flagged = label_consistency_check(samples, rejected, cfg)
            checks.append(check)
            if len(flagged):  # disjoint: the check judges only windows no rule rejected
                rejected = pd.concat([rejected, flagged], ignore_index=True)

        # -- dataset level --
        lost, degraded, notes = _quarantine_losses(catalog, stats)
        rejected_keys = set(zip(rejected["session_id"], rejected["window_index"], strict=True))
        n_bad = len(rejected_keys) + degraded + lost
        # Degraded samples that were also rejected must not be counted twice.
        if degraded:
            n_bad -= _overlap_degraded_rejected(catalog, stats, rejected_keys)
        total = len(stats) + lost
        bad_fraction = n_bad / total if total else 0.0
        checks.append(
            CheckResult(
                "bad_sample_fraction",
                "dataset",
                f"{_pct(bad_fraction)} ({n_bad} of {total}: {len(rejected)} rejected, "
                f"{degraded} with a quarantined stream, ~{lost} in quarantined sessions)",
                f"≤ {_pct(cfg.max_bad_fraction)}",
                severity_for("bad_sample_fraction", "fail", cfg),
                bad_fraction <= cfg.max_bad_fraction,
                "; ".join(notes[:10]),
            )
        )
        accepted = stats[~_key_mask(stats, rejected_keys)]
        checks.append(class_balance_check(accepted, cfg))
        checks.extend(subgroup_checks(accepted, cfg))
        checks.append(completeness_check(stats, cfg))
        if align_report is not None and len(align_report):
            checks.extend(align_report_checks(align_report, cfg))
        if splits is not None and len(splits):
            checks.extend(split_leak_checks(_session_splits(splits, stats), cfg))

        summary = summarize_for_reference(accepted)
        checks.extend(drift_checks(summary, reference_stats, cfg))

        docs = runner.build_docs(Path(docs_dir)) if docs_dir is not None else None
    finally:
        runner.close()

    quarantine_rows = quarantine.to_frame(
        [
            quarantine.QuarantineRecord(
                stage=STAGE,
                session_id=r.session_id,
                modality=None if pd.isna(r.modality) else r.modality,
                uri=None,
                reason=r.reason,
                window_index=int(r.window_index),
            )
            for r in rejected.itertuples()
        ]
    )
    passed = not any(not c.passed and c.severity == "fail" for c in checks)
    return ValidationResult(
        checks=checks,
        passed=passed,
        rejected=rejected[["session_id", "window_index", "reason"]].reset_index(drop=True),
        quarantine=quarantine_rows,
        bad_fraction=bad_fraction,
        data_docs_dir=docs,
        stats=stats,
        summary=summary,
        enforced=cfg.fail_on_error,
    )


def _key_mask(stats: pd.DataFrame, keys: set) -> np.ndarray:
    if not keys:
        return np.zeros(len(stats), dtype=bool)
    idx = pd.MultiIndex.from_arrays([stats["session_id"], stats["window_index"]])
    return idx.isin(list(keys))


def _overlap_degraded_rejected(catalog: pd.DataFrame, stats: pd.DataFrame, keys: set) -> int:
    """How many rejected samples also miss a modality whose stream ingest quarantined."""
    q = catalog[catalog["status"].eq("quarantined")]
    rejected = _key_mask(stats, keys)
    overlap = np.zeros(len(stats), dtype=bool)
    for sid, rows in q.groupby(q["session_id"].astype(str)):
        sel = (stats["session_id"].astype(str) == sid).to_numpy()
        for modality in rows["modality"].astype(str):
            col = schema.PRESENCE_COLUMNS.get(modality)
            if col in stats.columns:
                overlap |= sel & ~stats[col].to_numpy(bool)
    return int((overlap & rejected).sum())


def with_split_checks(
    result: ValidationResult, split_of: dict[str, str], cfg: ValidateConfig
) -> ValidationResult:
    """Add the split-leak checks (session, subject, near-duplicate frames across splits) once the
    dataset has been split; the verdict is recomputed, so `raise_for_gate` stops on a leak."""
    import dataclasses

    per_session = pd.DataFrame({"session_id": list(split_of), "split": list(split_of.values())})
    splits = _session_splits(per_session, result.stats)
    new = split_leak_checks(splits, cfg)
    failed = any(not c.passed and c.severity == "fail" for c in new)
    return dataclasses.replace(
        result, checks=[*result.checks, *new], passed=result.passed and not failed
    )


def split_label_rejections(
    rejected: pd.DataFrame, cfg: ValidateConfig
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(windows to leave out of every split, windows to leave out of train only).

    With `label_check_drop_from: train` the windows only the label check flagged stay in
    validation and test: a test set curated by a model's disagreement would flatter the model.
    """
    if cfg.label_check_drop_from == "all" or rejected is None or not len(rejected):
        return rejected, None
    flagged = rejected["reason"].astype(str).str.startswith(label_noise.REASON + ":")
    return rejected[~flagged], rejected[flagged]
