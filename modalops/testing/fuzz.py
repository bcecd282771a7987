"""Bad-input fuzzing: hypothesis strategies that damage ONE stream file of ONE session of a tiny
valid dataset, and the checks that ingest and align quarantine it (naming the file) or tolerate
it, without crashing and without losing any valid sample. Shared by tests/test_fuzz_inputs.py
and benchmarks/fuzz_inputs.py:

    raw = LocalStore(tmp); spec = write_fuzz_dataset(raw)
    clean, memo, tally = clean_run(raw, spec), AlignMemo(), Tally()
    outcome = run_example(clean, damage, memo)   # damage drawn from CASES[i].build(clean)
    tally.add(CASES[i].label, outcome); print(tally.table(CASES))

Every example is ingested and aligned, and its windows are counted against the clean run's
(Windows says which are promised); AlignMemo aligns each distinct input once, so the hundreds of
examples that quarantine the same stream cost one alignment.

Each case says what the kind's documented checks (modalops/kinds/<kind>/params.py, read.py)
decide: `quarantine` (the file's URI is in a quarantine reason), `tolerate` (the stream stays ok
and its values are handled; the case's own check says how), `flag` (ingest keeps it, a kind's
catalog rule of the validation gate breaks on exactly that row) or `either` (a random cut point
decides between quarantine and a shorter, still valid file).
"""

from __future__ import annotations

import collections
import copy
import hashlib
import io
import json
import struct
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from unittest import mock

import numpy as np
import pandas as pd
import yaml
from hypothesis import strategies as st

from modalops.dataset import layout
from modalops.dataset.spec import SPEC_FILE, DatasetSpec, parse_spec
from modalops.kinds.audio.wav import encode_wav
from modalops.kinds.text.read import TextStream
from modalops.store import ObjectStore
from modalops.testing.read_memo import ReadMemo
from modalops.testing.recordings import (
    LIGHT_ROI,
    encode_image,
    encode_video,
    make_session,
    synthetic_spec,
    table_bytes,
    write_session,
)

Expect = Literal["quarantine", "tolerate", "flag", "either"]
SESSIONS = ("rec-000", "rec-001")
ROI = {"kind": "roi_brightness", "roi": list(LIGHT_ROI), "channel": "green"}
N_EVENTS = 6  # text events per session: enough to reorder and duplicate


def fuzz_spec() -> dict[str, Any]:
    """One stream of every kind, plus a CSV time series next to the Parquet one."""
    spec = synthetic_spec()
    spec["streams"]["cam"] = {
        "kind": "video", "path": "cam.mp4", "cue": ROI,
        "params": {"width": 16, "height": 16, "fps": 4.0},
    }  # fmt: skip
    spec["streams"]["acc"] = {
        "kind": "timeseries", "path": "acc.csv", "cue": "magnitude_envelope",
        "params": {"time_column": "t", "channels": ["acc_u", "acc_v"], "sample_rate": 50.0},
    }  # fmt: skip
    return spec


def write_fuzz_dataset(store: ObjectStore, duration_s: float = 6.0, seed: int = 0) -> DatasetSpec:
    """Two sessions of `duration_s` with 16x16 frames; returns the parsed spec."""
    spec_dict = fuzz_spec()
    spec = parse_spec(copy.deepcopy(spec_dict))
    rows = []
    for i, sid in enumerate(SESSIONS):
        session, frames, truth = make_session(spec, sid, duration_s, seed * 1000 + i, frame_size=16)
        log = session.streams["log"]
        times = np.round(np.linspace(0.5, duration_s - 0.5, N_EVENTS) + log.times[0], 2)
        texts = [f"event {k} of {sid}" for k in range(N_EVENTS)]
        session.streams["log"] = TextStream(times=times, texts=texts, params=log.params)
        write_session(store, spec, session, frames, truth)
        rows.append({"session_id": sid, "plant": f"plant-{i}", "shift": "day",
                     "operator": f"person-{i}"})  # fmt: skip
    store.put_text(SPEC_FILE, yaml.safe_dump(spec_dict, sort_keys=False))
    store.put_bytes(spec.sessions.table, table_bytes(pd.DataFrame(rows), spec.sessions.table))
    return spec


# ---- running one example ---------------------------------------------------------------------


def _hash(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return hashlib.sha256(v if isinstance(v, bytes) else str(v).encode()).hexdigest()[:16]


def sample_digest(samples: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Per window: label, each stream's presence and a hash of its payload (comparable rows)."""
    from modalops.dataset import columns

    out = samples[["session_id", "window_index", "label"]].astype(str).copy()
    for s in spec.stream_names:
        out[f"{s}:present"] = samples[columns.presence_column(s)].astype(bool).to_numpy()
        out[f"{s}:payload"] = [_hash(v) for v in samples[columns.payload_column(s)]]
    return out.reset_index(drop=True)


@dataclass
class RunResult:
    """What ingest_recordings kept and quarantined."""

    catalog: pd.DataFrame
    quarantine: pd.DataFrame


@dataclass
class Aligned:
    """What align_dataset cut: sample_digest of every session's windows, and its quarantine."""

    samples: pd.DataFrame
    quarantine: pd.DataFrame


def ingest(raw: ObjectStore, spec: DatasetSpec) -> RunResult:
    from modalops.config.data import IngestConfig
    from modalops.ingest import ingest_recordings

    got = ingest_recordings(raw, spec, IngestConfig(raw_uri=raw.uri("")))
    return RunResult(got.catalog, got.quarantine)


def align_inputs(spec: DatasetSpec, got: RunResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What align_dataset reads of the ingest result: each row's status and the session's
    metadata (align/dataset.py), and the URIs quarantined at ingest (bad_files). Align is given
    only these, so the memo's key covers all of it: a column it comes to need fails loudly."""
    catalog = got.catalog[["session_id", "stream", "status", *spec.meta_columns]]
    return catalog, got.quarantine[["stage", "uri"]]


def align(raw: ObjectStore, spec: DatasetSpec, got: RunResult, plots: bool = False) -> Aligned:
    """align_dataset into a scratch store.

    `plots=False` replaces the three matplotlib PNGs of the align report with nothing: drawing
    them is ~1.5 s a call and none of the fuzzed input reaches them; the clean run draws them.
    """
    import tempfile

    import modalops.align.dataset as align_mod
    from modalops.align.session import empty_samples
    from modalops.config.align import AlignConfig
    from modalops.store import LocalStore

    catalog, quarantine = align_inputs(spec, got)
    plotter = align_mod.write_plots if plots else lambda *a: []
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(align_mod, "write_plots", plotter):
        out = LocalStore(tmp)
        res = align_mod.align_dataset(raw, spec, catalog, AlignConfig(), out, "fuzz", quarantine)
        frames = [pd.read_parquet(io.BytesIO(out.get_bytes(k))) for k in res.part_keys]
    samples = pd.concat(frames, ignore_index=True) if frames else empty_samples(spec)
    return Aligned(sample_digest(samples, spec), res.quarantine)


class AlignMemo(ReadMemo):
    """Alignments of damaged copies of one dataset, each run once per distinct input: equal
    align_inputs and every read of the raw store answering the same (ReadMemo)."""

    def align(self, raw: ObjectStore, spec: DatasetSpec, got: RunResult) -> Aligned:
        catalog, quarantine = align_inputs(spec, got)
        key = _hash(catalog.to_csv(index=False) + quarantine.to_csv(index=False))
        return self.run(raw, key, lambda store: align(store, spec, got))


@dataclass
class Clean:
    """The undamaged dataset: its spec, a copy of every file's bytes, and the clean run."""

    raw: ObjectStore
    spec: DatasetSpec
    files: dict[str, bytes]
    run: RunResult
    aligned: Aligned
    _derived: dict[tuple, Any] = field(default_factory=dict, init=False, repr=False)

    def key(self, sid: str, stream: str) -> str:
        return layout.session_key(self.spec, sid, self.spec.streams[stream].path)

    def derived(self, key: tuple, make: Callable[[], Any]) -> Any:
        """`make()` once per key: the clean run never changes, and every example compares with
        the same few slices of it (sorting a catalog slice costs more than ingesting a file)."""
        if key not in self._derived:
            self._derived[key] = make()
        return self._derived[key]

    def row(self, sid: str, stream: str) -> dict[str, Any]:
        cat = self.run.catalog
        return self.derived(
            ("row", sid, stream),
            lambda: _rows(cat[(cat["session_id"] == sid) & (cat["stream"] == stream)])[0],
        )


def clean_run(raw: ObjectStore, spec: DatasetSpec) -> Clean:
    files = {k: raw.get_bytes(k) for k in raw.list("")}
    run = ingest(raw, spec)
    aligned = align(raw, spec, run, plots=True)
    if not (run.catalog["status"] == "ok").all() or len(run.quarantine):
        raise AssertionError(f"the clean dataset is not clean:\n{run.catalog}\n{run.quarantine}")
    return Clean(raw, spec, files, run, aligned)


@dataclass
class Damage:
    """What one example does: files to overwrite (None: delete) and what must happen."""

    kind: str
    case: str
    session_id: str
    stream: str | None  # None: the whole session folder
    target: str  # the key whose URI (or the key itself) a reason must name
    writes: dict[str, bytes | None]
    expect: Expect
    check: Callable[[dict[str, Any], Clean], str | None] | None = None  # tolerate/either: why not
    rule: str | None = None  # flag: the catalog rule that must break
    note: str = ""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # hypothesis's printer
        p.text(repr(self))

    def __repr__(self) -> str:  # printed for a failing example; the bytes are noise
        sizes = {k: None if v is None else len(v) for k, v in self.writes.items()}
        return (f"Damage({self.kind}/{self.case} {self.note}, {self.session_id}/{self.stream}, "
                f"bytes written {sizes})")  # fmt: skip


@dataclass(frozen=True)
class Windows:
    """One example's aligned windows counted against the clean run's (count_windows).

    Promised (`expected`): every window of the other sessions, whole, and the damaged session's
    windows on its undamaged streams. Not promised (`at_stake`): the windows of a session whose
    reference stream (it defines the windows and every other stream's clock) or whole folder was
    damaged; counted as still cut (same index and label) and identical on the undamaged streams.
    """

    expected: int
    kept: int  # expected windows identical after the damage
    at_stake: int
    at_stake_cut: int
    at_stake_same: int

    @property
    def lost(self) -> int:
        return self.expected - self.kept


@dataclass
class Outcome:
    """What one example did; `failures` are broken promises (empty: the example passed)."""

    category: str  # quarantined | tolerated | flagged | crashed | failed
    failures: list[str]
    windows: Windows | None  # None: not measured (a crash stopped the example before counting)

    @property
    def lost(self) -> int | None:
        """Valid windows lost or changed; None when the example was not measured."""
        return None if self.windows is None else self.windows.lost


class Tally:
    """Outcomes per case and the windows of the measured ones: an unmeasured example adds to
    `tried` and nothing to the window counts, so `measured` < `tried` shows it."""

    HEADER = ("| kind | case | tried | measured | quarantined (file named) | tolerated | flagged "
              "| crashed | failed | windows expected | kept | lost | at stake: reference or "
              "folder damaged | still cut | identical |")  # fmt: skip
    COLUMNS = ("tried", "measured", "quarantined", "tolerated", "flagged", "crashed", "failed",
               "expected", "kept", "lost", "at_stake", "at_stake_cut", "at_stake_same")  # fmt: skip

    def __init__(self) -> None:
        self.cases: dict[str, collections.Counter] = {}

    def clear(self, label: str) -> None:
        self.cases[label] = collections.Counter()

    def add(self, label: str, outcome: Outcome) -> None:
        counts = self.cases.setdefault(label, collections.Counter())
        counts["tried"] += 1
        counts[outcome.category] += 1
        w = outcome.windows
        if w is not None:
            counts["measured"] += 1
            counts.update(expected=w.expected, kept=w.kept, lost=w.lost, at_stake=w.at_stake,
                          at_stake_cut=w.at_stake_cut, at_stake_same=w.at_stake_same)  # fmt: skip

    def total(self) -> collections.Counter:
        return sum(self.cases.values(), collections.Counter())

    def summary(self, memo: ReadMemo) -> str:
        """One line of the totals, with how many alignments were run for them."""
        t = self.total()
        return (f"{t['tried']} examples, {t['measured']} measured ({memo.ran} distinct align "
                f"inputs aligned, {memo.replayed} replayed): {t['kept']} of {t['expected']} valid "
                f"windows kept, {t['lost']} lost")  # fmt: skip

    def table(self, cases: list[Case]) -> str:
        """A markdown table: one row per case run, then the totals."""

        def row(kind: str, name: str, c: collections.Counter) -> str:
            return f"| {kind} | {name} | " + " | ".join(str(c[k]) for k in self.COLUMNS) + " |"

        rows = [row(c.kind, c.name, self.cases[c.label]) for c in cases if c.label in self.cases]
        sep = "|" + "---|" * (len(self.COLUMNS) + 2)
        return "\n".join([self.HEADER, sep, *rows, row("**all**", "", self.total())])


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    ordered = df.sort_values(["session_id", "stream"]) if len(df) > 1 else df  # one row: as is
    return [
        {k: (None if pd.isna(v) else v) for k, v in r.items()} for r in ordered.to_dict("records")
    ]


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["session_id", "stream"]).reset_index(drop=True)


def _names(reason: Any, raw: ObjectStore, key: str) -> bool:
    """The reason names the file (URI or key) and says something beyond it."""
    if not isinstance(reason, str):
        return False
    uri = raw.uri(key)
    for name in (uri, key):
        if name in reason:
            return len(reason.replace(name, "").strip(" :()-")) > 0
    return False


def _apply(raw: ObjectStore, writes: dict[str, bytes | None]) -> None:
    for key, data in writes.items():
        if data is None:
            raw.delete(key)
        else:
            raw.put_bytes(key, data)


def _restore(raw: ObjectStore, clean: Clean, writes: dict[str, bytes | None]) -> None:
    for key in writes:
        if key in clean.files:
            raw.put_bytes(key, clean.files[key])
        else:
            raw.delete(key)


def _catalog_rule_breaks(catalog: pd.DataFrame, spec: DatasetSpec) -> dict[str, set]:
    """Validation's catalog rules evaluated row by row: rule -> {(session, stream)} breaking it."""
    from modalops.config.validate import ValidateConfig
    from modalops.validate.suites import catalog_rules, catalog_view

    view = catalog_view(catalog, spec)
    out: dict[str, set] = {}
    for rule in catalog_rules(spec, ValidateConfig()):
        bad = rule.mask(view)
        if bad.any():
            sub = view[bad]
            out[rule.check] = set(zip(sub["session_id"], sub["stream"], strict=True))
    return out


def run_example(clean: Clean, damage: Damage, memo: AlignMemo | None = None) -> Outcome:
    """Apply the damage, run ingest and align, check every promise, count the windows against
    the clean run's, restore the files. Every example is aligned (through `memo`, equal inputs
    once); only a crash leaves it unmeasured."""
    raw, spec = clean.raw, clean.spec
    _apply(raw, damage.writes)
    try:
        try:
            got = ingest(raw, spec)
        except Exception:  # noqa: BLE001 - a crash is what this looks for
            return Outcome("crashed", [f"ingest crashed:\n{traceback.format_exc()}"], None)
        outcome = _judge_ingest(clean, damage, got)
        try:
            aligned = memo.align(raw, spec, got) if memo is not None else align(raw, spec, got)
        except Exception:  # noqa: BLE001
            crash = f"align crashed:\n{traceback.format_exc()}"
            return Outcome("crashed", [*outcome.failures, crash], None)
        _judge_align(clean, damage, aligned, outcome)
        if outcome.failures:
            outcome.category = "failed"
        return outcome
    finally:
        _restore(raw, clean, damage.writes)


def _judge_ingest(clean: Clean, damage: Damage, got: RunResult) -> Outcome:
    raw, spec, sid = clean.raw, clean.spec, damage.session_id
    fails: list[str] = []
    cat, q = got.catalog, got.quarantine

    # every row but the damaged stream's is the clean run's (hashes, status, every value)
    def untouched(cat: pd.DataFrame) -> pd.DataFrame:
        mine = (cat["session_id"] == sid) & (
            (cat["stream"] == damage.stream) | (damage.stream is None)
        )
        return _sorted(cat[~mine])

    ref = clean.derived(("untouched", sid, damage.stream), lambda: untouched(clean.run.catalog))
    if not untouched(cat).equals(ref):
        fails.append("catalog rows of undamaged streams/sessions changed")
    stray = q[
        (q["session_id"] != sid) | ((q["stream"] != damage.stream) & (damage.stream is not None))
    ]
    if len(stray):
        fails.append(f"quarantine rows for undamaged streams: {stray.to_dict('records')}")
    if damage.stream is None:  # a missing session folder: every item quarantined, naming it
        mine = cat[cat["session_id"] == sid]
        folder = layout.session_folder(spec, sid)
        ok = (mine["status"] == "quarantined").all() and all(
            _names(r, raw, folder) for r in mine["reason"]
        )
        if not ok:
            fails.append(f"missing session folder not quarantined by name: {_rows(mine)}")
        return Outcome("failed" if fails else "quarantined", fails, None)

    row = _rows(cat[(cat["session_id"] == sid) & (cat["stream"] == damage.stream)])[0]
    mine_q = q[(q["session_id"] == sid) & (q["stream"] == damage.stream)]
    named_row = row["status"] == "quarantined" and _names(row["reason"], raw, damage.target)
    named_item = any(
        _names(r, raw, damage.target) and u == raw.uri(damage.target)
        for u, r in zip(mine_q["uri"], mine_q["reason"], strict=True)
    )
    quarantined = named_row or named_item
    if row["status"] == "quarantined" and not named_row:
        fails.append(f"quarantined without naming {damage.target}: {row['reason']!r}")
    bad_q = [r for r in mine_q["reason"] if not isinstance(r, str) or not r.strip()]
    if bad_q:
        fails.append(f"quarantine rows without a reason: {bad_q}")
    why_not = damage.check(row, clean) if damage.check else None
    category = "quarantined" if quarantined else "tolerated"
    if damage.expect == "quarantine" and not quarantined:
        fails.append(f"expected {damage.target} quarantined by name; got {row['status']} "
                     f"{row['reason']!r}, quarantine rows {mine_q['reason'].tolist()}")  # fmt: skip
    elif damage.expect in ("tolerate", "flag") and quarantined:
        fails.append(
            f"expected tolerated; got quarantined: {row['reason']!r} {mine_q['reason'].tolist()}"
        )
    elif damage.expect in ("tolerate", "flag", "either") and not quarantined and why_not:
        fails.append(f"tolerated but {why_not}")
    if damage.expect == "flag" and not quarantined:
        breaks = _catalog_rule_breaks(cat, spec)
        if breaks.get(damage.rule) != {(sid, damage.stream)}:
            fails.append(f"catalog rule {damage.rule} should break on {sid}/{damage.stream} only; "
                         f"breaks on {breaks.get(damage.rule)}")  # fmt: skip
        category = "flagged"
    if damage.expect == "tolerate" and not quarantined and damage.rule is None:
        breaks = _catalog_rule_breaks(cat, spec)
        mine_breaks = [r for r, where in breaks.items() if (sid, damage.stream) in where]
        if mine_breaks:
            fails.append(f"tolerated, but breaks catalog rules {mine_breaks}")
    return Outcome("failed" if fails else category, fails, None)


def _project(rows: set[tuple] | list[tuple], idx: list[int]) -> set[tuple]:
    return {tuple(r[i] for i in idx) for r in rows}


def count_windows(clean: Clean, damage: Damage, now: pd.DataFrame) -> tuple[Windows, int]:
    """This example's windows against the clean run's (Windows says which are promised), and
    how many windows it cut that the clean run did not, in the promised ones' sessions. Windows
    are compared as row tuples in sets (one row per window of a session): pandas merges and
    masks here cost more than the rest of judging an example."""
    cols, sid = list(clean.aligned.samples.columns), damage.session_id
    at = cols.index("session_id")
    undamaged = [i for i, c in enumerate(cols) if c.split(":")[0] != damage.stream]

    def split(df: pd.DataFrame) -> tuple[set[tuple], set[tuple]]:
        """(the damaged session's rows on its undamaged streams, the other sessions' rows)."""
        rows = list(df[cols].itertuples(index=False, name=None))
        theirs = {r for r in rows if r[at] != sid}
        return _project([r for r in rows if r[at] == sid], undamaged), theirs

    mine_ref, theirs_ref = clean.derived(
        ("windows", sid, damage.stream), lambda: split(clean.aligned.samples)
    )
    mine_now, theirs_now = split(now)
    expected, kept = len(theirs_ref), len(theirs_ref & theirs_now)
    added = len(theirs_now - theirs_ref)
    same = len(mine_ref & mine_now)
    if damage.stream is None or damage.stream == clean.spec.reference:
        # session, window and label: never a stream's columns, so always among `undamaged`
        cut = [undamaged.index(cols.index(c)) for c in ("session_id", "window_index", "label")]
        still_cut = len(_project(mine_ref, cut) & _project(mine_now, cut))
        return Windows(expected, kept, len(mine_ref), still_cut, same), added
    added += len(mine_now - mine_ref)
    return Windows(expected + len(mine_ref), kept + same, 0, 0, 0), added


def _judge_align(clean: Clean, damage: Damage, got: Aligned, outcome: Outcome) -> None:
    windows, added = count_windows(clean, damage, got.samples)
    outcome.windows = windows
    if windows.lost:
        outcome.failures.append(
            f"{windows.lost} of {windows.expected} valid windows lost or changed at align"
        )
    if added:
        outcome.failures.append(f"{added} windows the clean run did not cut")
    for r in got.quarantine["reason"]:
        if not isinstance(r, str) or not r.strip():
            outcome.failures.append("align quarantine row without a reason")


# ---- damage builders ---------------------------------------------------------------------------

session_ids = st.sampled_from(SESSIONS)


def cut(data: bytes) -> st.SearchStrategy[bytes]:
    """A random prefix: from nothing (a zero-byte file) to all but the last byte."""
    return st.integers(0, len(data) - 1).map(lambda n: data[:n])


def garbage() -> st.SearchStrategy[bytes]:
    return st.binary(min_size=0, max_size=4096)


def splice_header(data: bytes) -> st.SearchStrategy[bytes]:
    """Another format's magic bytes over the file's first bytes."""
    magics = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"RIFF\x00\x00\x00\x00WAVE", b"PAR1",
              b"\x1aE\xdf\xa3", b"\x00\x00\x00\x18ftypmp42", b"GIF89a", b"%PDF-1.4"]  # fmt: skip
    others = [m for m in magics if m[:4] != data[:4]]  # the file's own format is not damage
    return st.sampled_from(others).map(lambda m: m + data[len(m) :])


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _table(clean: Clean, key: str) -> pd.DataFrame:
    return layout.read_table(clean.files[key], key)


def _write_like(key: str, df: pd.DataFrame) -> bytes:
    return _parquet(df) if key.endswith(".parquet") else _csv(df)


def _disorder(times: pd.Series, draw: Callable, dup: bool) -> tuple[pd.Series, int]:
    """Swap two neighbouring timestamps (out of order) or repeat one (duplicated)."""
    t = times.to_numpy().copy()
    i = draw(st.integers(1, t.size - 1))
    if dup:
        t[i] = t[i - 1]
    else:
        t[i - 1], t[i] = t[i], t[i - 1]
    return pd.Series(t, name=times.name), i


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    build: Callable[[Clean], st.SearchStrategy[Damage]]

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"


CASES: list[Case] = []


def case(kind: str, name: str):
    def register(fn: Callable[[Clean], st.SearchStrategy[Damage]]):
        CASES.append(Case(kind, name, fn))
        return fn

    return register


def _simple(kind: str, name: str, stream: str, key_of: Callable[[Clean, str], str],
            bytes_of: Callable[[bytes], st.SearchStrategy[bytes | None]], expect: Expect,
            check=None, rule=None, note: str = ""):  # fmt: skip
    """A case that replaces one file with bytes drawn from `bytes_of(clean bytes)`."""

    @st.composite
    def build_one(draw, clean: Clean) -> Damage:
        sid = draw(session_ids)
        key = key_of(clean, sid)
        data = draw(bytes_of(clean.files[key]))
        return Damage(kind, name, sid, stream, key, {key: data}, expect, check, rule, note)

    CASES.append(Case(kind, name, lambda clean: build_one(clean)))


def stream_file(stream: str) -> Callable[[Clean, str], str]:
    return lambda clean, sid: clean.key(sid, stream)


def frame_file(index: int) -> Callable[[Clean, str], str]:
    return lambda clean, sid: layout.session_key(clean.spec, sid, f"front/{index:06d}.jpg")


missing: Callable[[bytes], st.SearchStrategy[None]] = lambda _: st.just(None)  # noqa: E731


def _shorter_prefix(row: dict[str, Any], clean: Clean) -> str | None:
    """A tolerated cut must leave a shorter prefix of the clean data: same start, fewer items."""
    base = clean.row(row["session_id"], row["stream"])
    if row["n_items"] is None or base["n_items"] is None or row["n_items"] > base["n_items"]:
        return f"n_items {row['n_items']} (clean {base['n_items']})"
    if row["t_first"] is not None and row["t_first"] != base["t_first"]:
        return f"t_first {row['t_first']} (clean {base['t_first']})"
    return None


def _same_items(row: dict[str, Any], clean: Clean) -> str | None:
    base = clean.row(row["session_id"], row["stream"])
    for c in ("n_items", "t_first", "t_last", "sample_rate", "nan_fraction", "duration_s"):
        if row[c] != base[c]:
            return f"{c} {row[c]} (clean {base[c]})"
    return None


# -- image: a frame index (CSV) and JPEG frames; Params.max_bad_fraction = 0.5 decides between
#    an item-level quarantine row (one bad frame) and quarantining the stream (most frames bad)

INDEX = stream_file("front")
_simple("image", "frame_truncated", "front", frame_file(5), cut, "quarantine")
_simple("image", "frame_garbage", "front", frame_file(5), lambda _: garbage(), "quarantine")
_simple("image", "frame_wrong_header", "front", frame_file(5), splice_header, "quarantine")
_simple("image", "frame_missing", "front", frame_file(5), missing, "quarantine")
_simple("image", "index_truncated", "front", INDEX, cut, "either", _shorter_prefix)
_simple("image", "index_garbage", "front", INDEX, lambda _: garbage(), "quarantine")
_simple("image", "index_missing", "front", INDEX, missing, "quarantine")


@case("image", "frame_png_as_jpg")
@st.composite
def _png_as_jpg(draw, clean: Clean) -> Damage:
    """A valid PNG under a .jpg name: Params.formats accepts PNG, Pillow reads by content."""
    sid = draw(session_ids)
    i = draw(st.integers(0, 23))
    key = frame_file(i)(clean, sid)
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(clean.files[key])).convert("RGB"))
    return Damage("image", "frame_png_as_jpg", sid, "front", key, {key: encode_image(img, "PNG")},
                  "tolerate")  # fmt: skip


@case("image", "frames_mostly_bad")
@st.composite
def _mostly_bad(draw, clean: Clean) -> Damage:
    """More than max_bad_fraction of the frames undecodable: the whole stream is quarantined."""
    sid = draw(session_ids)
    bad = draw(st.lists(st.integers(0, 23), min_size=13, max_size=24, unique=True))
    writes = {frame_file(i)(clean, sid): b"\xff\xd8" + bytes(draw(st.binary(max_size=64)))
              for i in bad}  # fmt: skip
    return Damage("image", "frames_mostly_bad", sid, "front", INDEX(clean, sid), writes,
                  "quarantine")  # fmt: skip


@case("image", "index_columns")
@st.composite
def _index_columns(draw, clean: Clean) -> Damage:
    sid = draw(session_ids)
    key = INDEX(clean, sid)
    df = _table(clean, key)
    col = draw(st.sampled_from(["t", "file"]))
    if draw(st.booleans()):
        df = df.drop(columns=[col])
    else:
        df = df.rename(columns={col: draw(st.sampled_from(["time", "T", "t ", "frame", "path"]))})
    return Damage("image", "index_columns", sid, "front", key, {key: _csv(df)}, "quarantine")


@case("image", "index_encoding")
@st.composite
def _index_encoding(draw, clean: Clean) -> Damage:
    """UTF-16 (a BOM and NULs), or an invalid UTF-8 / latin-1 byte somewhere in the CSV."""
    sid = draw(session_ids)
    key = INDEX(clean, sid)
    text = clean.files[key].decode()
    how = draw(st.sampled_from(["utf-16", "utf-16-le", "latin-1", "invalid"]))
    if how.startswith("utf-16"):
        data = text.encode(how)
    else:
        pos = draw(st.integers(0, len(text)))
        bad = (
            "é".encode("latin-1")
            if how == "latin-1"
            else draw(st.sampled_from([b"\xff", b"\xc3(", b"\x80"]))
        )
        data = text[:pos].encode() + bad + text[pos:].encode()
    return Damage("image", "index_encoding", sid, "front", key, {key: data}, "quarantine")


@case("image", "index_timestamps")
@st.composite
def _index_times(draw, clean: Clean) -> Damage:
    sid = draw(session_ids)
    key = INDEX(clean, sid)
    df = _table(clean, key)
    what = draw(st.sampled_from(["swap", "duplicate", "nan", "inf", "text"]))
    if what in ("swap", "duplicate"):
        df["t"], _ = _disorder(df["t"], draw, what == "duplicate")
    else:
        i = draw(st.integers(0, len(df) - 1))
        df["t"] = df["t"].astype(object)
        df.loc[i, "t"] = {"nan": "nan", "inf": "inf", "text": "12:00:01"}[what]
    return Damage("image", "index_timestamps", sid, "front", key, {key: _csv(df)}, "quarantine")


@case("image", "index_empty")
@st.composite
def _index_empty(draw, clean: Clean) -> Damage:
    sid = draw(session_ids)
    key = INDEX(clean, sid)
    data = draw(st.sampled_from([b"", b"t,file\n", b"\n", b"t,file"]))
    return Damage("image", "index_empty", sid, "front", key, {key: data}, "quarantine")


# -- video: an MP4 decoded with PyAV; Params.fps (4) +- fps_tolerance (20 %) is checked at ingest

VIDEO = stream_file("cam")
# A cut inside the trailing metadata after the last frame loses nothing: every frame decodes
_simple("video", "truncated", "cam", VIDEO, cut, "either", _same_items)
_simple("video", "garbage", "cam", VIDEO, lambda _: garbage(), "quarantine")
_simple("video", "wrong_header", "cam", VIDEO, splice_header, "quarantine")
_simple("video", "missing", "cam", VIDEO, missing, "quarantine")
_simple("video", "empty", "cam", VIDEO, lambda _: st.just(b""), "quarantine")


@case("video", "rate_mismatch")
@st.composite
def _video_rate(draw, clean: Clean) -> Damage:
    """Every 2nd/3rd frame kept (2 or 1.3 fps) or each frame doubled in time (8 fps)."""
    from modalops.kinds.video.read import decode_video

    sid = draw(session_ids)
    key = VIDEO(clean, sid)
    times, frames = decode_video(clean.files[key], key)
    how = draw(st.sampled_from(["half", "third", "double"]))
    if how == "double":
        frames = np.repeat(frames, 2, axis=0)
        times = np.arange(frames.shape[0]) / 8.0
    else:
        step = 2 if how == "half" else 3
        frames, times = frames[::step], times[::step]
    return Damage("video", "rate_mismatch", sid, "cam", key,
                  {key: encode_video(frames, times)}, "quarantine")  # fmt: skip


# -- audio: a PCM WAV; the clock file declares its sample rate (read.py checks the header's)

AUDIO = stream_file("mic")
_simple("audio", "truncated", "mic", AUDIO, cut, "quarantine")
_simple("audio", "garbage", "mic", AUDIO, lambda _: garbage(), "quarantine")
_simple("audio", "missing", "mic", AUDIO, missing, "quarantine")
_simple("audio", "wrong_header", "mic", AUDIO, splice_header, "quarantine")


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    return data[:offset] + struct.pack(fmt, value) + data[offset + struct.calcsize(fmt) :]


# RIFF chunk size: readers skip it (streaming writers leave 0 or 0xFFFFFFFF there); the fmt and
# data chunks are intact, so every sample is read as before.
_simple("audio", "riff_size", "mic", AUDIO,
        lambda d: st.integers(0, 2**32 - 1).map(lambda v: _patch(d, 4, "<I", v)),
        "tolerate", _same_items)  # fmt: skip


@case("audio", "header_fields")
@st.composite
def _wav_header(draw, clean: Clean) -> Damage:
    """A header field that disagrees with the rest: rate, bits, channels, data size, format."""
    sid = draw(session_ids)
    key = AUDIO(clean, sid)
    d = clean.files[key]
    field_ = draw(st.sampled_from(["rate", "bits", "channels", "data_size", "format"]))
    if field_ == "rate":  # rate and byte rate rewritten consistently: the clock file disagrees
        rate = draw(st.sampled_from([4000, 11025, 16000, 22050, 44100, 0]))
        d = _patch(_patch(d, 24, "<I", rate), 28, "<I", rate * 2)
    elif field_ == "bits":
        d = _patch(d, 34, "<H", draw(st.sampled_from([0, 4, 8, 24, 32, 64])))
    elif field_ == "channels":
        d = _patch(d, 22, "<H", draw(st.sampled_from([0, 2, 3, 6])))
    elif field_ == "data_size":
        true = len(d) - 44
        d = _patch(d, 40, "<I", draw(st.integers(true + 2, 2**32 - 1)))
    else:
        d = _patch(d, 20, "<H", draw(st.sampled_from([0, 2, 3, 0xFFFE, 85])))
    return Damage("audio", "header_fields", sid, "mic", key, {key: d}, "quarantine",
                  note=field_)  # fmt: skip


@case("audio", "other_rate")
@st.composite
def _wav_rate(draw, clean: Clean) -> Damage:
    """A valid WAV at another rate than the clock file's 8000 Hz (resampled content)."""
    from modalops.kinds.audio.wav import decode_wav

    sid = draw(session_ids)
    key = AUDIO(clean, sid)
    x, rate = decode_wav(clean.files[key], key)
    new = draw(st.sampled_from([4000, 16000, 11025, 7999, 8001]))
    t = np.arange(int(x.size * new / rate)) / new
    y = np.interp(t, np.arange(x.size) / rate, x).astype(np.float32)
    return Damage("audio", "other_rate", sid, "mic", key, {key: encode_wav(y, new)}, "quarantine")


@case("audio", "empty")
@st.composite
def _wav_empty(draw, clean: Clean) -> Damage:
    sid = draw(session_ids)
    key = AUDIO(clean, sid)
    data = draw(st.sampled_from([b"", encode_wav(np.zeros(0, np.float32), 8000)]))
    return Damage("audio", "empty", sid, "mic", key, {key: data}, "quarantine")


# -- timeseries: a CSV (acc) and a Parquet (imu) table. Ingest rejects unreadable tables,
#    missing columns, non-numbers and bad timestamps; NaN/inf shares and the row rate are
#    Checks (max_stream_nan_fraction = 5 %, rate_tolerance = 20 %) of the validation gate's
#    catalog rules, so ingest keeps the stream (with nan_fraction / sample_rate measured)

ACC, IMU = stream_file("acc"), stream_file("imu")
for _name, _stream, _key in (("csv", "acc", ACC), ("parquet", "imu", IMU)):
    _simple("timeseries", f"{_name}_truncated", _stream, _key, cut,
            "either" if _name == "csv" else "quarantine", _shorter_prefix)  # fmt: skip
    _simple("timeseries", f"{_name}_garbage", _stream, _key, lambda _: garbage(), "quarantine")
    _simple("timeseries", f"{_name}_missing", _stream, _key, missing, "quarantine")


def _ts_case(name: str, stream: str, key_of):
    def register(fn):
        @st.composite
        def build_one(draw, clean: Clean) -> Damage:
            sid = draw(session_ids)
            key = key_of(clean, sid)
            df = _table(clean, key)
            out = fn(draw, df, key)
            data, expect = out[0], out[1]
            check = out[2] if len(out) > 2 else None
            rule = out[3] if len(out) > 3 else None
            return Damage("timeseries", name, sid, stream, key, {key: data}, expect, check, rule)

        CASES.append(Case("timeseries", name, lambda clean: build_one(clean)))
        return fn

    return register


for _name, _stream, _key in (("csv", "acc", ACC), ("parquet", "imu", IMU)):
    channels = ["acc_u", "acc_v"] if _stream == "acc" else ["gx", "gy", "gz"]

    @_ts_case(f"{_name}_columns", _stream, _key)
    def _ts_columns(draw, df, key, channels=channels):
        col = draw(st.sampled_from(["t", *channels]))
        if draw(st.booleans()):
            df = df.drop(columns=[col])
        else:
            df = df.rename(columns={col: draw(st.sampled_from(["time", col.upper(), col + "_"]))})
        return _write_like(key, df), "quarantine"

    @_ts_case(f"{_name}_timestamps", _stream, _key)
    def _ts_times(draw, df, key):
        what = draw(st.sampled_from(["swap", "duplicate", "nan", "inf", "text"]))
        if what in ("swap", "duplicate"):
            df["t"], _ = _disorder(df["t"], draw, what == "duplicate")
        elif what == "text":
            df["t"] = df["t"].astype(str)
            df.loc[draw(st.integers(0, len(df) - 1)), "t"] = "12:00:01.5"
        else:
            df.loc[draw(st.integers(0, len(df) - 1)), "t"] = np.nan if what == "nan" else np.inf
        return _write_like(key, df), "quarantine"

    @_ts_case(f"{_name}_empty", _stream, _key)
    def _ts_empty(draw, df, key):
        if draw(st.booleans()):
            return b"", "quarantine"
        return _write_like(key, df.iloc[:0]), "quarantine"

    @_ts_case(f"{_name}_values", _stream, _key)
    def _ts_values(draw, df, key, channels=channels):
        """NaN, inf or 1e300 (beyond float32: read as inf) in some cells: ingest measures the
        non-finite share; at most max_stream_nan_fraction is tolerated, more breaks the rule."""
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300]))
        n_cells = len(df) * len(channels)
        k = draw(
            st.one_of(
                st.integers(1, int(0.04 * n_cells)), st.integers(int(0.07 * n_cells), n_cells)
            )
        )
        cells = draw(st.lists(st.integers(0, n_cells - 1), min_size=k, max_size=k, unique=True))
        arr = df[channels].to_numpy(np.float64).copy()
        arr.flat[cells] = value
        df[channels] = arr
        share = k / n_cells

        def measured(row, clean, share=share):
            if row["nan_fraction"] is None or abs(row["nan_fraction"] - share) > 1e-9:
                return f"nan_fraction {row['nan_fraction']} (expected {share})"
            return None

        if share <= 0.05:
            return _write_like(key, df), "tolerate", measured
        return (
            _write_like(key, df),
            "flag",
            measured,
            f"catalog_{key.rsplit('/', 1)[-1].split('.')[0]}_nan_fraction",
        )

    @_ts_case(f"{_name}_rate", _stream, _key)
    def _ts_rate(draw, df, key, channels=channels):
        """Rows at 2x or 0.5x the declared sample_rate over the same span: ingest measures the
        rate; the catalog rule (rate_tolerance 20 %) breaks."""
        factor = draw(st.sampled_from([2.0, 0.5, 3.0, 0.25]))
        t = df["t"].to_numpy(np.float64)
        new_t = np.arange(t[0], t[-1], (t[1] - t[0]) / factor)
        out = pd.DataFrame({"t": new_t, **{c: np.interp(new_t, t, df[c]) for c in channels}})
        stream = key.rsplit("/", 1)[-1].split(".")[0]
        return _write_like(key, out), "flag", None, f"catalog_{stream}_rate"

    if _name == "parquet":

        @_ts_case("parquet_dtypes", _stream, _key)
        def _ts_dtypes(draw, df, key, channels=channels):
            """Numbers stored as strings or ints are read as numbers (tolerated); words, bytes,
            dates or nested values are not."""
            col = draw(st.sampled_from(["t", *channels]))
            how = draw(st.sampled_from(["str_numbers", "words", "bytes", "datetime", "list"]))
            if how == "str_numbers":
                df[col] = df[col].map(repr)
                return _write_like(key, df), "tolerate", _same_items
            if how == "words":
                df[col] = [f"v{i}" for i in range(len(df))]
            elif how == "bytes":
                df[col] = [b"\x00\x01" for _ in range(len(df))]
            elif how == "datetime":
                df[col] = pd.to_datetime(df[col], unit="s")
            else:
                df[col] = [[v] for v in df[col]]
            return _write_like(key, df), "quarantine"

    if _name == "csv":

        @_ts_case("csv_encoding", _stream, _key)
        def _ts_encoding(draw, df, key):
            text = _csv(df).decode()
            how = draw(st.sampled_from(["utf-16", "latin-1", "invalid"]))
            if how == "utf-16":
                return text.encode("utf-16"), "quarantine"
            pos = draw(st.integers(0, len(text)))
            bad = (
                "°".encode("latin-1")
                if how == "latin-1"
                else draw(st.sampled_from([b"\xff", b"\xc3(", b"\x80"]))
            )
            return text[:pos].encode() + bad + text[pos:].encode(), "quarantine"


# -- text: JSON lines of {t, text}. Events typed by people carry coarse timestamps: read.py
#    orders them rather than rejecting, so reordered or repeated events are tolerated

LOG = stream_file("log")
_simple(
    "text", "truncated", "log", LOG, cut, "either", lambda row, clean: _shorter_text(row, clean)
)
_simple("text", "garbage", "log", LOG, lambda _: garbage().filter(_not_jsonl), "quarantine")
_simple("text", "missing", "log", LOG, missing, "quarantine")


def _not_jsonl(data: bytes) -> bool:
    """Random bytes that happen to be blank lines or JSON objects are not damage."""
    try:
        lines = [ln for ln in data.decode("utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        return True
    return bool(lines) and not all(ln.strip().startswith("{") for ln in lines)


def _shorter_text(row: dict[str, Any], clean: Clean) -> str | None:
    base = clean.row(row["session_id"], row["stream"])
    if row["n_items"] is None or row["n_items"] > base["n_items"]:
        return f"n_items {row['n_items']} (clean {base['n_items']})"
    return None


def _lines(clean: Clean, key: str) -> list[str]:
    return clean.files[key].decode().splitlines()


@case("text", "encoding")
@st.composite
def _text_encoding(draw, clean: Clean) -> Damage:
    sid = draw(session_ids)
    key = LOG(clean, sid)
    lines = _lines(clean, key)
    i = draw(st.integers(0, len(lines) - 1))
    rec = json.loads(lines[i])
    rec["text"] = draw(st.sampled_from(["café ouvert", "Temperatur 40 °C", "naïve"]))
    lines[i] = json.dumps(rec, ensure_ascii=False)
    how = draw(st.sampled_from(["latin-1", "utf-16", "invalid"]))
    text = "\n".join(lines) + "\n"
    if how == "invalid":
        pos = draw(st.integers(0, len(text)))
        data = text[:pos].encode() + b"\xff" + text[pos:].encode()
    else:
        data = text.encode(how)
    return Damage("text", "encoding", sid, "log", key, {key: data}, "quarantine", note=how)


@case("text", "bad_records")
@st.composite
def _text_records(draw, clean: Clean) -> Damage:
    """A line that is not an event: no time, a non-number or NaN time, no text, not JSON."""
    sid = draw(session_ids)
    key = LOG(clean, sid)
    lines = _lines(clean, key)
    i = draw(st.integers(0, len(lines) - 1))
    bad = draw(st.sampled_from(['{"text": "no time"}', '{"t": "noon", "text": "x"}',
                                '{"t": NaN, "text": "x"}', '{"t": Infinity, "text": "x"}',
                                '{"t": 1.0}', '[1.0, "x"]', '"just a string"', '{"t": 1.0,',
                                '{"t": null, "text": "x"}']))  # fmt: skip
    lines[i] = bad
    return Damage("text", "bad_records", sid, "log", key, {key: ("\n".join(lines) + "\n").encode()},
                  "quarantine")  # fmt: skip


@case("text", "timestamps")
@st.composite
def _text_times(draw, clean: Clean) -> Damage:
    """Events shuffled or one repeated: tolerated (sorted on read); shuffled events must give
    the clean run's windows exactly."""
    sid = draw(session_ids)
    key = LOG(clean, sid)
    lines = _lines(clean, key)
    if draw(st.booleans()):
        order = draw(st.permutations(range(len(lines))))
        lines = [lines[i] for i in order]
        check = _same_items
    else:
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
        check = None
    return Damage("text", "timestamps", sid, "log", key, {key: ("\n".join(lines) + "\n").encode()},
                  "tolerate", check)  # fmt: skip


@case("text", "empty")
@st.composite
def _text_empty(draw, clean: Clean) -> Damage:
    """No events at all (a zero-byte or blank file): a quiet log is not bad data."""
    sid = draw(session_ids)
    key = LOG(clean, sid)
    data = draw(st.sampled_from([b"", b"\n", b"\n\n  \n"]))

    def no_items(row, clean):
        return None if row["n_items"] == 0 else f"n_items {row['n_items']}"

    return Damage("text", "empty", sid, "log", key, {key: data}, "tolerate", no_items)


# -- a whole session folder gone (listed in the sessions table)


@case("session", "folder_missing")
@st.composite
def _folder_missing(draw, clean: Clean) -> Damage:
    sid = draw(session_ids)
    folder = layout.session_folder(clean.spec, sid) + "/"
    writes: dict[str, bytes | None] = {k: None for k in clean.files if k.startswith(folder)}
    return Damage("session", "folder_missing", sid, None, folder.rstrip("/"), writes, "quarantine")
