"""A registered version's model card: what it is for, what it was measured on, how it scored,
where it is weak and where it came from, built from the evaluation report and the run.

MLflow has had an open request for model cards since 2020 (mlflow/mlflow#3613, issue 25).
The card is data (sections of paragraphs, bullet lists and tables) rendered as Markdown and as
one self-contained HTML page. Every part is read defensively: a figure the report does not hold
is said to be missing ("not measured" / "not recorded for this version"), never left out
silently, so a version registered before cards existed still gets an honest card.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modalops.register.describe import ModelFacts, gate_lines, metrics_table, what_it_is

CARD_MD, CARD_HTML = "model_card/card.md", "model_card/card.html"
NOT_MEASURED = "not measured for this version"
NOT_RECORDED = "not recorded for this version"
# MLflow's model_versions.description is VARCHAR(5000): PostgreSQL and MySQL refuse longer text
DESCRIPTION_LIMIT = 5000
# a stream whose removal costs more macro-F1 than this is one the model leans on
LEANS_ON_DROP = 0.05
# the report keys the skew and stream-loss curves may come under (issue 25, part 1)
CURVE_KEYS = ("skew", "stream_loss", "skew_curve", "stream_loss_curve", "curves")
_ROWS_SHOWN = 40


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]


Block = str | list[str] | Table  # a paragraph, a bullet list, a table


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class ModelCard:
    """A card's sections, rendered as Markdown or as a self-contained HTML page."""

    title: str
    sections: list[Section]

    def markdown(self) -> str:
        parts = [f"# {self.title}"]
        for s in self.sections:
            parts.append(f"## {s.title}")
            parts += [_block_md(b) for b in s.blocks]
        return "\n\n".join(parts) + "\n"

    def html(self) -> str:
        body = [f"<h1>{_inline(self.title)}</h1>"]
        for s in self.sections:
            body.append(f"<h2>{_inline(s.title)}</h2>")
            body += [_block_html(b) for b in s.blocks]
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body)
            + "</body></html>\n"
        )

    def section(self, title: str) -> Section | None:
        return next((s for s in self.sections if s.title == title), None)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "color:#222;line-height:1.45}h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;"
    "border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.5rem 0}"
    "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;font-size:.9rem}"
    "th{background:#f3f3f3}code{background:#f3f3f3;padding:0 .2rem}"
)


def _block_md(block: Block) -> str:
    if isinstance(block, Table):
        lines = ["| " + " | ".join(block.header) + " |", "|" + "---|" * len(block.header)]
        lines += ["| " + " | ".join(r) + " |" for r in block.rows]
        return "\n".join(lines)
    if isinstance(block, list):
        return "\n".join(f"- {item}" for item in block)
    return block


def _inline(text: str) -> str:
    """Markdown's `code` and **bold** as HTML, everything else escaped."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _block_html(block: Block) -> str:
    if isinstance(block, Table):
        head = "".join(f"<th>{_inline(h)}</th>" for h in block.header)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in block.rows
        )
        return f"<table><tr>{head}</tr>{rows}</table>"
    if isinstance(block, list):
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block) + "</ul>"
    return "<p>" + "<br>".join(_inline(line) for line in block.split("\n")) + "</p>"


# ---- what a card is built from ---------------------------------------------------------------------


@dataclass(frozen=True)
class CardSources:
    """Everything a card is built from; any part may be missing (a version registered before
    cards, a report from before a figure existed)."""

    model_name: str
    version: str
    spec: Mapping[str, Any] | None = None  # DatasetSpec.to_dict()
    report: Mapping[str, Any] | None = None  # EvaluationReport.to_dict() (report.json)
    version_tags: Mapping[str, str] = field(default_factory=dict)
    run_id: str | None = None
    run_tags: Mapping[str, str] = field(default_factory=dict)
    alignment: Mapping[str, Any] = field(default_factory=dict)  # the pipeline run's `align.*`
    test_counts: Mapping[str, int | None] = field(default_factory=dict)  # windows/sessions/subjects
    dataset_profile: Mapping[str, Any] = field(default_factory=dict)  # the run's dataset input
    window_s: float | None = None
    gate_min_macro_f1: float | None = None
    description: str | None = None  # the version's description (shown when little else is)
    missing: Sequence[str] = ()  # what the reader looked for and did not find


def _num(x: Any, nd: int = 3) -> str:
    if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(float(x)):
        return "n/a"
    return f"{float(x):.{nd}f}"


def _ci(row: Mapping[str, Any], key: str) -> str:
    return f"{_num(row.get(key))} [{_num(row.get(key + '_lo'))}, {_num(row.get(key + '_hi'))}]"


def _records(value: Any) -> list[dict[str, Any]]:
    return [r for r in value if isinstance(r, Mapping)] if isinstance(value, list) else []


def _facts(src: CardSources) -> ModelFacts | None:
    if not src.spec:
        return None
    return ModelFacts(
        src.model_name,
        list((src.spec.get("streams") or {}).keys()),
        list((src.spec.get("labels") or {}).get("classes") or []),
        str(src.spec.get("name") or src.version_tags.get("dataset_name") or "?"),
        src.version_tags.get("dataset_version"),
    )


# ---- the sections ----------------------------------------------------------------------------------


def overview(src: CardSources) -> Section:
    facts = _facts(src)
    if facts is None:
        blocks: list[Block] = [f"Dataset spec: {NOT_RECORDED}; streams and classes unknown."]
        if src.description:
            blocks += ["The version's description, as registered:", src.description]
        return Section("Overview", blocks)
    window = f"{src.window_s:g} s " if src.window_s else ""
    threshold = ((src.report or {}).get("abstention") or {}).get("threshold")
    use = (
        f"**Intended use**: classifies {window}windows of recordings declared like dataset "
        f"`{facts.dataset_name}` (the same streams, of the same kinds) into one of "
        f"{len(facts.classes)} classes: {', '.join(f'`{c}`' for c in facts.classes)}. "
        "Not evaluated on any other dataset, stream layout or class set."
    )
    if isinstance(threshold, (int, float)) and threshold > 0:
        use += f" Below a calibrated confidence of {_num(threshold)} the model abstains."
    return Section("Overview", [what_it_is(facts), use])


def data_section(src: CardSources) -> Section:
    tags, spec = src.version_tags, src.spec or {}
    blocks: list[Block] = [
        f"Dataset `{spec.get('name') or tags.get('dataset_name') or '?'}`, version "
        f"`{tags.get('dataset_version') or NOT_RECORDED}`, spec digest "
        f"`{(tags.get('dataset_spec_digest') or NOT_RECORDED)[:16]}`."
    ]
    streams = spec.get("streams") or {}
    if streams:
        reference = spec.get("reference")
        blocks.append(
            Table(
                ("stream", "kind", "role"),
                [
                    (f"`{n}`", str(s.get("kind")), "reference clock" if n == reference else "")
                    for n, s in streams.items()
                ],
            )
        )
    counts = src.test_counts
    head = (src.report or {}).get("headline") or {}
    windows = counts.get("windows", head.get("n_test"))
    sessions = counts.get("sessions", head.get("n_test_sessions"))
    subjects = counts.get("subjects")
    blocks.append(
        f"Test split (counts only): {windows if windows is not None else NOT_RECORDED} windows, "
        f"{sessions if sessions is not None else NOT_RECORDED} sessions, "
        f"{subjects if subjects is not None else 'subjects ' + NOT_RECORDED}"
        + (" subjects." if subjects is not None else ".")
    )
    splits = src.dataset_profile.get("splits") or {}
    split_sessions = src.dataset_profile.get("sessions") or {}
    if splits:
        blocks.append(
            Table(
                ("split", "windows", "sessions"),
                [(k, str(v), str(split_sessions.get(k, "n/a"))) for k, v in splits.items()],
            )
        )
    return Section("Data", blocks)


def metrics_section(src: CardSources) -> Section:
    report = src.report or {}
    table = metrics_table(report.get("headline") or {})
    if not table:
        return Section("Headline metrics (test)", [f"Test figures: {NOT_RECORDED}."])
    blocks: list[Block] = ["\n".join(table)]
    models = _records(report.get("models"))
    if models:
        blocks.append(
            Table(
                ("model", "macro-F1 [95% CI]", "accuracy", "ECE"),
                [
                    (
                        str(m.get("model_id")),
                        _ci(m, "macro_f1"),
                        _num(m.get("accuracy")),
                        _num(m.get("ece")),
                    )
                    for m in models
                ],  # fmt: skip
            )
        )
    return Section("Headline metrics (test)", blocks)


def slices_section(src: CardSources) -> Section:
    report = src.report or {}
    rows = _records(report.get("slices"))
    if not rows or "macro_f1" not in rows[0]:
        return Section("Slices", [f"Slices: {NOT_MEASURED}."])
    head = report.get("headline") or {}
    table = Table(
        ("slice", "windows", "sessions", "macro-F1 [95% CI]", "ECE", "coverage", "flagged"),
        [
            (
                f"{r.get('column')}={r.get('value')}",
                str(r.get("n")),
                str(r.get("n_sessions")),
                _ci(r, "macro_f1"),
                _num(r.get("ece")),
                _num(r.get("coverage")),
                "yes" if r.get("flagged") else "",
            )
            for r in rows
        ],  # fmt: skip
    )
    worst = head.get("worst_slice")
    line = (
        f"**Worst slice**: `{worst}`, macro-F1 {_num(head.get('worst_slice_macro_f1'))} "
        f"({head.get('worst_slice_n')} windows)."
        if worst
        else "**Worst slice**: none with enough windows to rank."
    )
    return Section("Slices", [table, line])


def calibration_section(src: CardSources) -> Section:
    cal = (src.report or {}).get("calibration") or {}
    if "ece_before" not in cal:
        return Section("Calibration", [f"Calibration: {NOT_MEASURED}."])
    return Section(
        "Calibration",
        [
            [
                f"ECE before calibration {_num(cal.get('ece_before'))}, after "
                f"{_num(cal.get('ece_after'))} (test)",
                f"temperature {_num(cal.get('temperature'), 2)}, fitted on "
                f"{cal.get('fitted_on', 'validation')}",
                f"NLL {_num(cal.get('nll_before'))} → {_num(cal.get('nll_after'))}",
            ]
        ],
    )


def abstention_section(src: CardSources) -> Section:
    ab = (src.report or {}).get("abstention") or {}
    if "test_coverage" not in ab:
        return Section("Abstention", [f"Abstention and coverage: {NOT_MEASURED}."])
    return Section(
        "Abstention",
        [
            f"Threshold {_num(ab.get('threshold'))} on calibrated confidence, chosen on "
            f"validation for {ab.get('target')} {ab.get('value')}: test coverage "
            f"{_num(ab.get('test_coverage'))}, selective accuracy "
            f"{_num(ab.get('test_selective_accuracy'))}. Coverage per slice: the Slices table."
        ],
    )


def robustness_section(src: CardSources) -> Section:
    rows = _records((src.report or {}).get("robustness"))
    blocks: list[Block] = []
    if rows:
        blocks.append(
            Table(
                ("stream removed", "macro-F1", "drop"),
                [
                    (f"`{r.get('removed')}`", _num(r.get("macro_f1")), _num(r.get("drop")))
                    for r in rows
                ],
            )  # fmt: skip
        )
    else:
        blocks.append(f"Missing-stream robustness: {NOT_MEASURED}.")
    blocks += curve_blocks(src.report or {})
    return Section("Robustness: missing streams, clock skew, stream loss", blocks)


def stress_blocks(stress: Mapping[str, Any]) -> list[Block]:
    """The evaluation's `stress` result (modalops/evaluate/stress.py): stream loss as a table,
    the fused model's macro-F1 per stream and clock shift, and the tests skipped, with why."""
    blocks: list[Block] = []
    loss = stress.get("stream_loss") or []
    if loss:
        cells = {(r["stream"], r["mode"], r["model"]): r.get("macro_f1") for r in loss}
        streams = list(dict.fromkeys(r["stream"] for r in loss))
        rows = [
            (f"`{st}`", *(_num(cells.get((st, mode, model))) for mode in ("drop", "noise")
                          for model in ("fused", "best_single")))
            for st in streams
        ]  # fmt: skip
        header = ("stream lost", "dropped: fused", "best single left", "noised: fused",
                  "best single left")  # fmt: skip
        blocks += ["**Stream loss** (test macro-F1)", Table(header, rows)]
    skew = [r for r in stress.get("skew") or [] if r.get("model") == "fused"]
    if skew:
        deltas = sorted({float(r["delta_s"]) for r in skew})
        f1 = {(r["stream"], float(r["delta_s"])): r.get("macro_f1") for r in skew}
        streams = list(dict.fromkeys(r["stream"] for r in skew))
        rows = [(f"`{st}`", *(_num(f1.get((st, d))) for d in deltas)) for st in streams]
        header = ("stream shifted", *(f"{d:+g} s" for d in deltas))
        blocks += ["**Clock skew** (fused test macro-F1, one stream shifted)", Table(header, rows)]
    else:
        blocks.append(f"Clock skew: {NOT_MEASURED}.")
    skipped = [f"{r.get('test')} on `{r.get('stream')}`: {r.get('reason')}"
               for r in stress.get("skipped") or []]  # fmt: skip
    if skipped:
        blocks += ["Not run:", skipped]
    return blocks


def curve_blocks(report: Mapping[str, Any]) -> list[Block]:
    """The skew and stream-loss curves: the evaluation's `stress` result, or (reports from
    elsewhere) whatever the report holds under a curve key, as generic tables."""
    stress = report.get("stress")
    if isinstance(stress, Mapping) and (stress.get("skew") or stress.get("stream_loss")):
        return stress_blocks(stress)
    found = [(k, report[k]) for k in CURVE_KEYS if report.get(k)]
    if not found:
        skipped = (stress or {}).get("skipped") if isinstance(stress, Mapping) else None
        why = f" ({'; '.join(str(r.get('reason')) for r in skipped)})" if skipped else ""
        return [f"Skew and stream-loss curves: {NOT_MEASURED}{why}."]
    blocks: list[Block] = []
    for key, value in found:
        blocks.append(f"**{key.replace('_', ' ')}**")
        blocks += _generic_blocks(value)
    return blocks


def _generic_blocks(value: Any) -> list[Block]:
    records = _records(value)
    if records:
        header = list(dict.fromkeys(k for r in records for k in r))
        rows = [
            tuple(_num(r.get(h)) if isinstance(r.get(h), float) else str(r.get(h, ""))
                  for h in header)
            for r in records[:_ROWS_SHOWN]
        ]  # fmt: skip
        more = [f"… {len(records) - _ROWS_SHOWN} more rows"] if len(records) > _ROWS_SHOWN else []
        return [Table(header, rows), *more]
    if isinstance(value, Mapping):
        out: list[Block] = []
        plain = []
        for k, v in value.items():
            if isinstance(v, (list, Mapping)):
                out += [f"`{k}`:", *_generic_blocks(v)]
            else:
                plain.append(f"{k}: {_num(v) if isinstance(v, float) else v}")
        return ([plain] if plain else []) + out
    return [str(value)]


def alignment_section(src: CardSources) -> Section:
    if not src.alignment:
        return Section("Alignment", [f"Alignment summary: {NOT_RECORDED}."])
    # the stage's wall time says nothing about the alignment; the mode leads the section
    items = [
        f"{k.removeprefix('align.')}: {_num(v) if isinstance(v, float) else v}"
        for k, v in sorted(src.alignment.items())
        if k not in ("align.seconds", "align.mode")
    ]
    mode = src.version_tags.get("align_mode") or src.alignment.get("align.mode")
    lead = f"Aligned with mode `{mode}`; the pipeline run's figures:" if mode else "Figures:"
    return Section("Alignment", [lead, items])


def limitations(src: CardSources) -> list[str]:
    """Known limitations, each from a measured figure: slices under the gate's minimum or
    flagged, the worst slice, streams the model leans on, abstention, a small test set."""
    report = src.report or {}
    head = report.get("headline") or {}
    out = []
    floor = src.gate_min_macro_f1
    for r in _records(report.get("slices")):
        name, f1 = f"{r.get('column')}={r.get('value')}", r.get("macro_f1")
        if floor is not None and isinstance(f1, (int, float)) and f1 < floor:
            out.append(
                f"slice `{name}` scores macro-F1 {_ci(r, 'macro_f1')}, below the gate's "
                f"minimum {_num(floor)}"
            )
        elif r.get("flagged"):
            out.append(
                f"slice `{name}` is flagged: macro-F1 {_ci(r, 'macro_f1')}, "
                f"{_num(r.get('gap'))} under overall"
            )
    if head.get("worst_slice"):
        out.append(
            f"worst slice `{head['worst_slice']}`: macro-F1 "
            f"{_num(head.get('worst_slice_macro_f1'))} on {head.get('worst_slice_n')} windows"
        )
    for r in _records(report.get("robustness")):
        drop = r.get("drop")
        if isinstance(drop, (int, float)) and drop > LEANS_ON_DROP:
            out.append(
                f"leans on stream `{r.get('removed')}`: without it macro-F1 drops by "
                f"{_num(drop)} (to {_num(r.get('macro_f1'))})"
            )
    one_session = [
        f"`{r.get('column')}={r.get('value')}`"
        for r in _records(report.get("slices"))
        if r.get("n_sessions") == 1
    ]
    if one_session:
        # the session bootstrap of one session resamples it whole: its interval has no width
        out.append(
            f"slices from one test session, their intervals say nothing: {', '.join(one_session)}"
        )
    lift_hi = head.get("lift_hi")
    if isinstance(lift_hi, (int, float)) and lift_hi < 0:
        out.append(
            f"fusion scores below the best single stream ({head.get('best_unimodal')}): lift "
            f"{_num(head.get('lift'))} [{_num(head.get('lift_lo'))}, {_num(lift_hi)}]"
        )
    before, after = head.get("ece_before"), head.get("ece_after")
    if isinstance(before, (int, float)) and isinstance(after, (int, float)) and after > before:
        out.append(f"calibration raised the test ECE ({_num(before)} → {_num(after)})")
    coverage = head.get("coverage")
    if isinstance(coverage, (int, float)) and coverage < 1.0:
        out.append(f"abstains on {100 * (1 - coverage):.1f}% of test windows at its threshold")
    sessions = head.get("n_test_sessions")
    if isinstance(sessions, int) and sessions < 10:
        out.append(f"tested on {sessions} sessions only: intervals are wide")
    if head.get("missing_slice_columns"):
        out.append(f"declared slices not in the test data: {head['missing_slice_columns']}")
    return out


def limitations_section(src: CardSources) -> Section:
    if not src.report:
        return Section("Known limitations", [f"Evaluation report: {NOT_RECORDED}; none derived."])
    found = limitations(src)
    return Section("Known limitations", [found or ["none found among the measured figures"]])


def gate_section(src: CardSources) -> Section:
    gate = (src.report or {}).get("gate") or {}
    if gate.get("decision"):
        decision = _Decision(
            gate.get("decision"), gate.get("previous_champion"), gate.get("decided_at", ""),
            list(gate.get("reasons") or []),
        )  # fmt: skip
        return Section("Promotion gate", ["\n".join(gate_lines(decision))])
    recorded = src.version_tags.get("promotion.decision")
    if recorded:
        reasons = [r for r in src.version_tags.get("promotion.reasons", "").split("\n") if r]
        return Section("Promotion gate", [f"**Promotion gate**: {recorded}.", reasons or []])
    return Section("Promotion gate", [f"**Promotion gate**: {NOT_RECORDED}."])


@dataclass(frozen=True)
class _Decision:  # what describe.gate_lines reads of a PromotionDecision
    decision: str
    previous_champion: str | None
    decided_at: str
    reasons: list[str]


def lineage_section(src: CardSources) -> Section:
    tags, run = src.version_tags, src.run_tags
    commit = run.get("mlflow.source.git.commit") or tags.get("git_commit")

    def item(name: str, value: str | None) -> str:
        return f"{name}: `{value}`" if value else f"{name}: {NOT_RECORDED}"

    return Section(
        "Lineage",
        [
            [
                item("registered version", f"{src.model_name}/{src.version}"),
                item("model run", src.run_id),
                item("pipeline run", tags.get("pipeline_run_id")),
                item("Prefect flow run", tags.get("prefect_flow_run_id")),
                item("git commit", commit),
                item("dataset version", tags.get("dataset_version")),
                item("dataset spec digest", tags.get("dataset_spec_digest")),
                item("registration fingerprint", tags.get("modalops.fingerprint")),
            ]
        ],
    )


def build_card(src: CardSources) -> ModelCard:
    """The card of one registered version, every section present (missing figures said so)."""
    sections = [
        overview(src),
        data_section(src),
        metrics_section(src),
        slices_section(src),
        calibration_section(src),
        abstention_section(src),
        robustness_section(src),
        alignment_section(src),
        limitations_section(src),
        gate_section(src),
        lineage_section(src),
    ]
    if src.missing:
        sections.append(Section("Not recorded for this version", [list(src.missing)]))
    return ModelCard(f"Model card: {src.model_name} v{src.version}", sections)


def description_of(card: ModelCard, short: str, pointer: str) -> str:
    """The version's description: the whole card where MLflow's column holds it, else `short`
    with the known limitations, and `pointer` to the full card."""
    full = card.markdown()
    if len(full) <= DESCRIPTION_LIMIT:
        return full
    found = card.section("Known limitations")
    text = short
    if found:
        block = _block_md(found.blocks[0]) if found.blocks else ""
        text += f"\n\n**Known limitations**\n\n{block}"
    room = DESCRIPTION_LIMIT - len(pointer) - 4
    return (text if len(text) <= room else text[: room - 1] + "…") + "\n\n" + pointer


def counts_of(meta: Any) -> dict[str, int | None]:
    """Windows, sessions and subjects in a test split's metadata table (counts, never ids)."""
    columns = getattr(meta, "columns", [])
    return {
        "windows": int(len(meta)),
        "sessions": int(meta["session_id"].nunique()) if "session_id" in columns else None,
        "subjects": int(meta["subject"].nunique()) if "subject" in columns else None,
    }


def profile_of(run: Any) -> dict[str, Any]:
    """The profile (splits, sessions per split) of the dataset a run logged as its input."""
    for item in getattr(getattr(run, "inputs", None), "dataset_inputs", None) or []:
        try:
            profile = json.loads(item.dataset.profile or "{}")
        except (TypeError, ValueError):
            continue
        if isinstance(profile, Mapping):
            return {k: v for k, v in profile.items() if k in ("splits", "sessions")}
    return {}


def alignment_of(run: Any) -> dict[str, Any]:
    """A pipeline run's `align.*` metrics and tags."""
    data = run.data
    found: dict[str, Any] = {k: v for k, v in data.tags.items() if k.startswith("align.")}
    found.update({k: v for k, v in data.metrics.items() if k.startswith("align.")})
    return found


# ---- the card in MLflow: written at registration, read by `modalops card` ----------------------------


def card_at_registration(
    client,
    *,
    model_name: str,
    version: str,
    spec: Any,
    report: Any,
    version_tags: Mapping[str, str],
    run_id: str,
    test_meta: Any,
    window_s: float | None,
    gate_min_macro_f1: float | None,
) -> ModelCard:
    """The card of a version being registered: the report and the spec in hand, the run's
    tags and dataset input, and the pipeline run's alignment figures read from MLflow."""
    run = client.get_run(run_id)
    pipeline = version_tags.get("pipeline_run_id")
    return build_card(
        CardSources(
            model_name=model_name,
            version=str(version),
            spec=spec.to_dict(),
            report=report.to_dict(),
            version_tags=dict(version_tags),
            run_id=run_id,
            run_tags=dict(run.data.tags),
            alignment=alignment_of(client.get_run(pipeline)) if pipeline else {},
            test_counts=counts_of(test_meta),
            dataset_profile=profile_of(run),
            window_s=window_s,
            gate_min_macro_f1=gate_min_macro_f1,
        )
    )


def log_card(client, run_id: str, card: ModelCard) -> None:
    """The card as the run's `model_card/card.md` and `model_card/card.html`."""
    client.log_text(run_id, card.markdown(), CARD_MD)
    client.log_text(run_id, card.html(), CARD_HTML)
