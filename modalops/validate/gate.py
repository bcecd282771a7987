"""The validation gate: run the suites, add dataset-level checks, reject bad samples, decide.

Two gates: `validate_dataset` before the dataset is split (per-sample rules, dataset-level
checks, label consistency, drift), and `gate_splits` once it is (a session, subject or frame
in two splits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from modalops import quarantine
from modalops.config.validate import ValidateConfig
from modalops.dataset.columns import presence_column, stat_column
from modalops.kinds.image.stats import hamming
from modalops.validate.drift import drift_checks
from modalops.validate.evidence import SampleEvidence
from modalops.validate.label_check import REASON as LABEL_REASON
from modalops.validate.label_check import key_mask, label_check_streams, label_consistency_check
from modalops.validate.result import (
    STAGE,
    CheckResult,
    Rule,
    ValidationResult,
    pct,
    raise_for_gate,
    severity_for,
    verdict_passed,
)
from modalops.validate.stats import (
    default_drift_statistics,
    known_streams,
    sample_stats,
    summarize_for_reference,
)
from modalops.validate.suites import (
    CATALOG_COLUMNS,
    CATALOG_FAIL_CHECKS,
    GXOutcome,
    GXRunner,
    catalog_rules,
    catalog_view,
    sample_rules,
)


def _outcome_to_check(
    rule: Rule, outcome: GXOutcome, table: str, severity: str, denominator: int
) -> CheckResult:
    judged = outcome.element_count - outcome.missing_count
    if outcome.exception:
        observed, details = "error", outcome.exception
    else:
        observed = f"{outcome.unexpected_count} of {judged} bad"
        if table == "samples":
            observed += f" ({pct(outcome.unexpected_count / max(denominator, 1))} of samples)"
        details = rule.note
    expected = rule.expected
    if rule.mostly < 1.0:
        expected += f" for ≥{100 * rule.mostly:g}%"
    return CheckResult(rule.check, table, observed, expected, severity, outcome.success, details)


# ---- what the spec and the config decide together --------------------------------------------


def required_streams(spec, cfg: ValidateConfig) -> list[str]:
    """cfg.required_streams, else the spec's required streams; unknown names are refused."""
    streams = spec.required_streams if cfg.required_streams is None else cfg.required_streams
    return known_streams(spec, streams, "required_streams")


def subgroup_columns(spec, cfg: ValidateConfig) -> list[str]:
    """cfg.subgroup_cols, else the spec's metadata.slices."""
    return list(spec.metadata.slices if cfg.subgroup_cols is None else cfg.subgroup_cols)


def drift_statistics(spec, cfg: ValidateConfig) -> list[str]:
    """cfg.drift_statistics, else every stream's kind's DRIFT_STATS + align_confidence + label."""
    return list(cfg.drift_statistics or default_drift_statistics(spec))


# ---- dataset-level checks (pandas) -------------------------------------------------------


def class_balance_check(
    stats: pd.DataFrame, classes: list[str], cfg: ValidateConfig
) -> CheckResult:
    labels = stats["label"].dropna()
    labels = labels[labels.isin(classes)]
    shares = labels.value_counts(normalize=True).reindex(list(classes), fill_value=0.0)
    worst = shares.idxmin() if len(labels) else "-"
    low = float(shares.min()) if len(labels) else 0.0
    details = ", ".join(f"{k} {pct(v)}" for k, v in shares.items())
    return CheckResult(
        "min_class_fraction",
        "dataset",
        f"{worst} {pct(low)}",
        f"every class ≥ {pct(cfg.min_class_fraction)}",
        severity_for("min_class_fraction", "fail", cfg),
        bool(len(labels)) and low >= cfg.min_class_fraction,
        details,
    )


def subgroup_checks(
    stats: pd.DataFrame, columns: list[str], cfg: ValidateConfig
) -> list[CheckResult]:
    checks = []
    for col in columns:
        name = f"min_samples_per_{col}"
        sev = severity_for(name, severity_for("min_samples_per_subgroup", "fail", cfg), cfg)
        expected = f"≥ {cfg.min_samples_per_subgroup} each"
        if col not in stats.columns or stats[col].isna().all():
            checks.append(
                CheckResult(name, "dataset", "column missing", expected, sev, False,
                            f"samples carry no {col!r} metadata")
            )  # fmt: skip
            continue
        counts = stats[col].fillna("<missing>").value_counts()
        small = counts[counts < cfg.min_samples_per_subgroup]
        worst = counts.idxmin()
        checks.append(
            CheckResult(name, "dataset", f"{worst}: {int(counts.min())}", expected, sev,
                        small.empty, ", ".join(f"{k}={v}" for k, v in counts.items()))
        )  # fmt: skip
    return checks


def completeness_check(stats: pd.DataFrame, streams: list[str], cfg: ValidateConfig) -> CheckResult:
    cols = [presence_column(s) for s in streams]
    complete = stats[cols].to_numpy(bool).all(axis=1) if len(stats) else np.zeros(0, bool)
    share = float(complete.mean()) if len(complete) else 0.0
    per = ", ".join(f"{c} {pct(float(stats[c].mean()))}" for c in cols) if len(stats) else ""
    return CheckResult(
        "completeness",
        "dataset",
        pct(share),
        f"≥ {pct(cfg.min_completeness)} with {'+'.join(streams) or '(no required stream)'}",
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


def _hashed_streams(table: pd.DataFrame) -> list[str]:
    """Streams whose frames the stats hash (any kind giving `<stream>__sha1` / `__phash`)."""
    out = []
    for col in table.columns:
        for stat in ("sha1", "phash"):
            suffix = stat_column("", stat)
            if col.endswith(suffix) and len(col) > len(suffix):
                out.append(col[: -len(suffix)])
    return list(dict.fromkeys(out))


def split_leak_checks(splits: pd.DataFrame, cfg: ValidateConfig | None = None) -> list[CheckResult]:
    """Leakage between splits: a session or subject in two splits; identical or near-duplicate
    frames of any hashed stream.

    `splits` has session_id, split, optionally subject, and optionally one row per sample with
    `<stream>__sha1` (exact frame identity) and `<stream>__phash` (uint64 perceptual hash).
    Frame checks are named `<stream>_identical_frames_across_splits` and
    `<stream>_near_duplicate_frames_across_splits`; a severity override without the stream
    prefix applies to every stream.
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
            CheckResult(name, "dataset", f"{len(leaked)} {key} values in >1 split", "0",
                        severity_for(name, "fail", cfg), leaked.empty, "; ".join(detail))
        )  # fmt: skip
    for stream in _hashed_streams(splits):
        sha1, ph = stat_column(stream, "sha1"), stat_column(stream, "phash")
        if sha1 in splits.columns:
            name = f"{stream}_identical_frames_across_splits"
            frames = splits.dropna(subset=[sha1])
            per = frames.groupby(sha1)["split"].nunique()
            copied = per[per > 1]
            sessions = frames.loc[frames[sha1].isin(copied.index), "session_id"].unique()
            checks.append(
                CheckResult(
                    name,
                    "dataset",
                    f"{len(copied)} {stream} frames stored in more than one split",
                    "0 (a byte-identical frame in two splits is a copied recording)",
                    severity_for(
                        name, severity_for("identical_frames_across_splits", "fail", cfg), cfg
                    ),
                    copied.empty,
                    ", ".join(map(str, sessions[:5])),
                )
            )
        if ph in splits.columns:
            name = f"{stream}_near_duplicate_frames_across_splits"
            frames = splits.dropna(subset=[ph])
            hashes = frames[ph].astype("uint64").to_numpy()
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
            # warn by default: a fixed viewpoint films near-identical empty scenes in every
            # session at its place, so similar frames across splits are expected there
            default = severity_for("near_duplicate_frames_across_splits", "warn", cfg)
            checks.append(
                CheckResult(
                    name,
                    "dataset",
                    f"{int(flagged.sum())} of {judged} val/test frames ({pct(share)})",
                    f"≤ {pct(cfg.max_near_duplicate_fraction)} within "
                    f"{cfg.near_duplicate_hamming} bits of a frame in another split",
                    severity_for(name, default, cfg),
                    share <= cfg.max_near_duplicate_fraction,
                    ", ".join(f"{r.session_id} ({r.split})" for r in examples.itertuples()),
                )
            )
    return checks


# ---- rejection and the bad-sample fraction -----------------------------------------------


def reject_samples(stats: pd.DataFrame, rules: list[Rule]) -> pd.DataFrame:
    """Rows breaking any per-sample rule: session_id, window_index, stream, reason."""
    masks = {rule.check: rule.mask(stats) for rule in rules}
    any_bad = np.zeros(len(stats), dtype=bool)
    for m in masks.values():
        any_bad |= m
    idx = np.flatnonzero(any_bad)
    reasons: list[list[str]] = [[] for _ in idx]
    blamed: list[str | None] = [None] * idx.size
    for rule in rules:
        sub = masks[rule.check][idx]
        if not sub.any():
            continue
        values = stats[rule.column].to_numpy()[idx] if rule.column in stats.columns else None
        for k in np.flatnonzero(sub):
            value = values[k] if values is not None else None
            shown = f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)
            reasons[k].append(f"{rule.check}: {rule.column}={shown}, expected {rule.expected}")
            if blamed[k] is None:
                blamed[k] = rule.stream
    return pd.DataFrame(
        {
            "session_id": stats["session_id"].to_numpy()[idx],
            "window_index": stats["window_index"].to_numpy()[idx].astype("int64"),
            "stream": pd.array(blamed, dtype="string"),
            "reason": ["; ".join(r) for r in reasons],
        }
    )


def _missing_quarantined(
    q: pd.DataFrame, stats: pd.DataFrame, spec
) -> tuple[np.ndarray, dict[str, list[str]]]:
    """Per sample: does it miss a stream ingest quarantined (`q`: the catalog's quarantined rows)?
    And which per session."""
    missing = np.zeros(len(stats), dtype=bool)
    per: dict[str, list[str]] = {}
    sids = stats["session_id"].astype(str).to_numpy()
    for sid, rows in q.groupby(q["session_id"].astype(str)):
        sel = sids == sid
        for stream in rows["stream"].astype(str):
            if stream in spec.streams and presence_column(stream) in stats.columns:
                miss = sel & ~stats[presence_column(stream)].to_numpy(bool)
                if miss.any():
                    missing |= miss
                    per.setdefault(sid, []).append(stream)
    return missing, per


def _quarantine_losses(
    catalog: pd.DataFrame, stats: pd.DataFrame, spec, rejected: np.ndarray
) -> tuple[int, int, list[str]]:
    """Samples lost or damaged by files ingest quarantined: (lost, degraded, why).

    A quarantined session (no samples at all) loses about duration / window-length samples;
    a quarantined stream of a session that still has samples degrades those of its samples
    that miss that stream (`degraded` leaves out samples already rejected: no double count).
    """
    if not {"session_id", "stream", "status"} <= set(catalog.columns):
        return 0, 0, []
    # sessions not labelled yet give no samples whatever their files: nothing is lost there
    unlabelled = catalog.loc[catalog["status"].eq("absent"), "session_id"]
    q = catalog[catalog["status"].eq("quarantined") & ~catalog["session_id"].isin(unlabelled)]
    if q.empty:
        return 0, 0, []
    have = set(stats["session_id"].astype(str))
    window = float(np.nanmedian(stats["window_s"])) if len(stats) else np.nan
    per_session = stats.groupby("session_id").size()
    fallback = float(per_session.median()) if len(per_session) else 0.0
    durations = pd.to_numeric(catalog.get("duration_s"), errors="coerce")
    lost = 0
    why = []
    for sid in sorted(set(q["session_id"].astype(str)) - have):
        dur = durations[catalog["session_id"].astype(str) == sid].max()
        ok = np.isfinite(dur) and np.isfinite(window) and window > 0
        est = dur / window if ok else fallback
        lost += int(round(est))
        why.append(f"{sid}: session lost (~{int(round(est))} samples)")
    missing, per = _missing_quarantined(q, stats, spec)
    why += [f"{sid}: {'+'.join(streams)} quarantined" for sid, streams in per.items()]
    return lost, int((missing & ~rejected).sum()), why


# ---- the gates ---------------------------------------------------------------------------


def _catalog_checks(
    runner: GXRunner, catalog: pd.DataFrame, spec, cfg: ValidateConfig
) -> list[CheckResult]:
    import great_expectations.expectations as gxe

    checks = []
    view = catalog_view(catalog, spec)
    missing = [c for c in CATALOG_COLUMNS if c not in catalog.columns]
    crules = [r for r in catalog_rules(spec, cfg) if r.column in view.columns]
    cexp = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(CATALOG_COLUMNS), exact_match=False, meta={"check": "catalog_columns"}
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
    q = view[view["status"].eq("quarantined")] if "status" in view.columns else view.iloc[:0]
    stream = q["stream"] if "stream" in q.columns else pd.Series("?", index=q.index)
    checks.append(
        CheckResult(
            "catalog_quarantined_streams",
            "catalog",
            f"{len(q)} of {len(view)} streams",
            "0 (counted in the bad-sample fraction)",
            severity_for("catalog_quarantined_streams", "warn", cfg),
            q.empty,
            "; ".join(
                f"{sid}/{s}: {reason}"
                for sid, s, reason in zip(
                    q["session_id"].head(10), stream.head(10), q["reason"].head(10), strict=True
                )
            ),
        )
    )
    return checks


def validate_dataset(
    spec,
    catalog: pd.DataFrame,
    samples: pd.DataFrame | None,
    cfg: ValidateConfig,
    align_report: pd.DataFrame | None = None,
    reference_stats: pd.DataFrame | None = None,
    docs_dir: Path | None = None,
    stats: pd.DataFrame | None = None,
    evidence: SampleEvidence | None = None,
) -> ValidationResult:
    """Run every check on the catalog and the aligned samples of `spec` (a DatasetSpec) and
    decide the gate.

    Suites, statistics, subgroup columns, required streams, label-check features and drift
    statistics are all derived from the spec (config fields override where they are set).
    `stats` may be passed to skip decoding (the benchmark does); otherwise it is
    `sample_stats(samples, spec)`. With `evidence` (`evidence_from_parts`: statistics and the
    label check's raw features, gathered a part at a time) `samples` is None and no payload is
    held. `reference_stats` is the `summarize_for_reference` table saved with the champion's
    dataset version.
    """
    required = required_streams(spec, cfg)
    if cfg.label_check:
        label_check_streams(spec, cfg)  # an unknown stream is refused before any work
    raw = None
    if evidence is not None:
        stats, raw = evidence.stats, (evidence.label_features if cfg.label_check else None)
    elif samples is None:
        raise ValueError("validate_dataset: give the aligned samples or their evidence")
    if stats is None:
        stats = sample_stats(samples, spec)
    checks: list[CheckResult] = []
    runner = GXRunner()
    try:
        checks += _catalog_checks(runner, catalog, spec, cfg)

        # -- sample suite --
        srules = sample_rules(spec, cfg)
        souts = runner.run("samples", stats, [r.to_gx() for r in srules])
        for rule, out in zip(srules, souts, strict=True):
            sev = severity_for(rule.check, "fail", cfg)
            checks.append(_outcome_to_check(rule, out, "samples", sev, len(stats)))

        rejected = reject_samples(stats, srules)
        if cfg.label_check:
            table = stats if raw is not None else samples
            check, flagged = label_consistency_check(table, rejected, spec, cfg, raw=raw)
            checks.append(check)
            if len(flagged):  # disjoint: the check judges only windows no rule rejected
                rejected = pd.concat([rejected, flagged], ignore_index=True)

        # -- dataset level --
        rejected_keys = set(zip(rejected["session_id"], rejected["window_index"], strict=True))
        is_rejected = key_mask(stats, rejected_keys)
        lost, degraded, why = _quarantine_losses(catalog, stats, spec, is_rejected)
        n_bad = len(rejected_keys) + degraded + lost
        total = len(stats) + lost
        bad_fraction = n_bad / total if total else 0.0
        checks.append(
            CheckResult(
                "bad_sample_fraction",
                "dataset",
                f"{pct(bad_fraction)} ({n_bad} of {total}: {len(rejected)} rejected, "
                f"{degraded} with a quarantined stream, ~{lost} in quarantined sessions)",
                f"≤ {pct(cfg.max_bad_fraction)}",
                severity_for("bad_sample_fraction", "fail", cfg),
                bad_fraction <= cfg.max_bad_fraction,
                "; ".join(why[:10]),
            )
        )
        accepted = stats[~is_rejected]
        checks.append(class_balance_check(accepted, list(spec.labels.classes), cfg))
        checks.extend(subgroup_checks(accepted, subgroup_columns(spec, cfg), cfg))
        checks.append(completeness_check(stats, required, cfg))
        if align_report is not None and len(align_report):
            checks.extend(align_report_checks(align_report, cfg))

        summary = summarize_for_reference(accepted, spec)
        checks.extend(drift_checks(summary, reference_stats, cfg, drift_statistics(spec, cfg)))

        docs = runner.build_docs(Path(docs_dir)) if docs_dir is not None else None
    finally:
        runner.close()

    quarantine_rows = quarantine.to_frame(
        [
            quarantine.QuarantineRecord(
                stage=STAGE,
                session_id=r.session_id,
                stream=None if pd.isna(r.stream) else r.stream,
                uri=None,
                reason=r.reason,
                window_index=int(r.window_index),
            )
            for r in rejected.itertuples()
        ]
    )
    return ValidationResult(
        checks=checks,
        passed=verdict_passed(checks),
        rejected=rejected[["session_id", "window_index", "reason"]].reset_index(drop=True),
        quarantine=quarantine_rows,
        bad_fraction=bad_fraction,
        data_docs_dir=docs,
        stats=stats,
        summary=summary,
        enforced=cfg.fail_on_error,
    )


def _session_splits(splits: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Per-sample split assignment with subject and frame hashes, from a per-session table."""
    right = splits[["session_id", "split"]].copy()
    right["session_id"] = right["session_id"].astype("string")
    hashed = [
        c
        for c in stats.columns
        if c.endswith(stat_column("", "sha1")) or c.endswith(stat_column("", "phash"))
    ]
    left = stats[
        [c for c in ("session_id", "window_index", "subject", *hashed) if c in stats]
    ].copy()
    left["session_id"] = left["session_id"].astype("string")
    if "subject" in splits.columns and "subject" not in left.columns:
        right["subject"] = splits["subject"].to_numpy()
    merged = left.merge(right.drop_duplicates(subset=["session_id"]), on="session_id", how="inner")
    # Sessions with no samples still count for the session / subject checks.
    extra = right[~right["session_id"].isin(merged["session_id"])]
    return pd.concat([merged, extra], ignore_index=True)


def with_split_checks(
    result: ValidationResult, split_of: dict[str, str], cfg: ValidateConfig
) -> ValidationResult:
    """The verdict plus the split-leak checks (session, subject, identical and near-duplicate
    frames across splits), recomputed: `raise_for_gate` on it stops on a leak."""
    per_session = pd.DataFrame({"session_id": list(split_of), "split": list(split_of.values())})
    new = split_leak_checks(_session_splits(per_session, result.stats), cfg)
    return dataclasses.replace(
        result, checks=[*result.checks, *new], passed=result.passed and verdict_passed(new)
    )


def gate_splits(
    verdict: ValidationResult,
    split_of: dict[str, str],
    cfg: ValidateConfig,
    on_verdict: Callable[[ValidationResult], None] | None = None,
) -> ValidationResult:
    """The second gate, once the dataset is split: add the split-leak checks to `verdict`, hand
    the new verdict to `on_verdict` (e.g. write verdict.md) whatever it says, then raise
    ValidationGateError when a 'fail' check failed (and `cfg.fail_on_error`, which also sets the
    returned verdict's `enforced`); else return it.

    `split_of` maps session_id -> split name (train / val / test).
    """
    verdict = dataclasses.replace(
        with_split_checks(verdict, split_of, cfg), enforced=cfg.fail_on_error
    )
    if on_verdict is not None:
        on_verdict(verdict)
    raise_for_gate(verdict)
    return verdict


def split_label_rejections(
    rejected: pd.DataFrame, cfg: ValidateConfig
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(windows to leave out of every split, windows to leave out of train only).

    With `label_check_drop_from: train` the windows only the label check flagged stay in
    validation and test: a test set curated by a model's disagreement would flatter the model.
    """
    if cfg.label_check_drop_from == "all" or rejected is None or not len(rejected):
        return rejected, None
    flagged = rejected["reason"].astype(str).str.startswith(LABEL_REASON + ":")
    return rejected[~flagged], rejected[flagged]
