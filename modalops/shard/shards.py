"""Aligned samples → session-split WebDataset shards with a content-hashed dataset version.

Every member is named from the dataset spec: `<key>.<stream>.<kind's shard_ext>` per present
stream plus `<key>.json` (label, label_index, metadata, presence per spec stream). The manifest
carries the spec and the window length, so whoever reads the shards decodes with them, and per
shard its sample count, byte size and sha256, so whoever reads a shard can tell it is the one
that was written: a tar cut at a member boundary is still a valid tar, only a shorter one
(issue 23).
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import tarfile
import tempfile
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import webdataset as wds
from webdataset.tariterators import group_by_keys

from modalops.config.pipeline import ShardConfig
from modalops.dataset import columns
from modalops.dataset.spec import DatasetSpec, parse_spec
from modalops.kinds.payloads import is_absent
from modalops.memory import release_freed_memory
from modalops.store import ObjectStore, join_key

DATASETS_PREFIX = "datasets"
MANIFEST_NAME = "manifest.json"
# /2: the dataset spec and window_s travel in the manifest; /3: a ShardCheck per shard
MANIFEST_FORMAT = "modalops.shards/3"
# Formats still read: their shards carry no checks, so nothing beyond the tar itself is checked
# (said once per version, `_warn_unchecked`).
UNCHECKED_FORMATS = ("modalops.shards/2",)
# A tar member is `<key>.<suffix>`: a plain name, no folders, no leading dot, no '..'.
_MEMBER = re.compile(r"^[^./\\][^/\\]*$")


@dataclass(frozen=True)
class ShardCheck:
    """What one shard held when it was written; every reader compares what it read with it."""

    n_samples: int
    n_bytes: int
    sha256: str

    @classmethod
    def of_file(cls, path: Path, n_samples: int) -> ShardCheck:
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return cls(n_samples, size, digest.hexdigest())

    def mismatch(self, url: str, n_samples: int, n_bytes: int, sha256: str) -> str | None:
        """The error message for a shard read as (`n_samples`, `n_bytes`, `sha256`), or None
        when it is the shard that was written."""
        found = {"sample count": n_samples, "size": n_bytes, "sha256": sha256}
        expected = {"sample count": self.n_samples, "size": self.n_bytes, "sha256": self.sha256}
        differ = [what for what in found if found[what] != expected[what]]
        if not differ:
            return None
        return (
            f"{url}: shard does not match the dataset manifest ({', '.join(differ)} differ): "
            f"found {n_samples} samples, {n_bytes} bytes, sha256 {sha256[:16]}...; expected "
            f"{self.n_samples} samples, {self.n_bytes} bytes, sha256 {self.sha256[:16]}... "
            "It was truncated or changed after it was written: restore it, or write the "
            "dataset version again"
        )


@dataclass
class SplitInfo:
    """One split of a dataset version: its shard keys (relative to the store root) and contents."""

    shards: list[str]
    n_samples: int
    sessions: list[str]
    label_counts: dict[str, int]
    group_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    # shard key -> what it held when written (empty in manifests older than format /3)
    shard_checks: dict[str, ShardCheck] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitInfo:
        checks = data.pop("shard_checks", {})
        return cls(**data, shard_checks={k: ShardCheck(**v) for k, v in checks.items()})


@dataclass
class DatasetManifest:
    """What `datasets/<version>/manifest.json` holds; the training and evaluation stages read it."""

    version: str
    store_uri: str
    prefix: str
    splits: dict[str, SplitInfo]
    label_counts: dict[str, int]
    created_from: dict[str, Any]
    spec: dict[str, Any]  # the DatasetSpec the shards were written with (spec.to_dict())
    spec_digest: str
    window_s: float  # window length of every sample (the align config's)
    format: str = MANIFEST_FORMAT

    def to_json(self) -> str:
        # keys unsorted: the spec's stream and class order is the model's input and output order
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "manifest.json") -> DatasetManifest:
        try:
            data = json.loads(text)
            found = data.get("format")
            if found != MANIFEST_FORMAT and found not in UNCHECKED_FORMATS:
                raise ValueError(f"format {found!r}, expected {MANIFEST_FORMAT!r}")
            splits = {name: SplitInfo.from_dict(info) for name, info in data.pop("splits").items()}
            manifest = cls(splits=splits, **data)
            if found == MANIFEST_FORMAT:
                for name, info in splits.items():
                    unchecked = [k for k in info.shards if k not in info.shard_checks]
                    if unchecked:
                        raise ValueError(f"split {name!r} has no shard_checks for {unchecked}")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{source}: not a modalops dataset manifest ({exc})") from None
        if found != MANIFEST_FORMAT:
            _warn_unchecked(manifest, source)
        return manifest

    def dataset_spec(self) -> DatasetSpec:
        """The DatasetSpec the shards were written with."""
        return parse_spec(self.spec, f"dataset {self.version} manifest (spec)")

    @property
    def stratify_by(self) -> str | None:
        """The metadata column the split was stratified by (its counts are in group_counts)."""
        return self.created_from.get("stratify_by")

    def shard_urls(self, split: str) -> list[str]:
        """Full URLs (local paths or s3://...) of the split's shards, for the DataModule."""
        if split not in self.splits:
            raise KeyError(
                f"dataset {self.version} has no split {split!r} (has {list(self.splits)})"
            )
        return [self._url(key) for key in self.splits[split].shards]

    def shard_checks(self) -> dict[str, ShardCheck]:
        """Shard URL (as `shard_urls` gives it) -> what the shard held when written, every split
        (empty for a manifest older than format /3)."""
        return {
            self._url(key): check
            for info in self.splits.values()
            for key, check in info.shard_checks.items()
        }

    def _url(self, key: str) -> str:
        return f"{self.store_uri.rstrip('/')}/{key}"


_WARNED: set[str] = set()


def _warn_unchecked(manifest: DatasetManifest, source: str) -> None:
    """Once per dataset version and process: its shards cannot be checked."""
    if manifest.version in _WARNED:
        return
    _WARNED.add(manifest.version)
    warnings.warn(
        f"{source}: dataset {manifest.version} has manifest format {manifest.format!r}, which "
        "records no per-shard sample counts or digests: a truncated or changed shard of it reads "
        f"without an error. Write the version again (format {MANIFEST_FORMAT!r}) to have its "
        "shards checked.",
        UserWarning,
        stacklevel=3,
    )


# ---- splits and version ----------------------------------------------------------------------


def split_columns(spec: DatasetSpec, cfg: ShardConfig) -> tuple[str | None, str | None]:
    """(group column, stratify column) of the split: the config's overrides, else the spec's
    subject (column 'subject') and metadata.stratify; ValueError names an unknown override."""
    known = spec.meta_columns
    for field_name in ("group_by", "stratify_by"):
        value = getattr(cfg, field_name)
        if value is not None and value not in known:
            raise ValueError(
                f"shard.{field_name}={value!r} is not a metadata column of dataset spec "
                f"{spec.name!r} (has {known})"
            )
    group = cfg.group_by or ("subject" if spec.metadata.subject else None)
    return group, cfg.stratify_by or spec.metadata.stratify


def assign_splits(
    sessions: pd.DataFrame,
    cfg: ShardConfig,
    group_by: str | None = None,
    stratify_by: str | None = None,
) -> dict[str, str]:
    """Session id → split, deterministic in `cfg.seed`, stratified by `stratify_by`.

    Sessions sharing a `group_by` value (e.g. a subject's) form one unit of assignment; without
    it each session is its own unit. Each stratum gives round(n·fraction) units to val and test;
    a stratum with two or more units always gives one to test, so an under-represented value is
    still evaluated. Afterwards every split is made non-empty by moving a unit out of the
    largest train stratum. `split_columns` resolves both columns from the spec and config.
    """
    if "session_id" not in sessions.columns:
        raise ValueError("assign_splits: the sessions table needs a session_id column")
    table = sessions.drop_duplicates("session_id")
    if len(table) < len(columns.SPLITS):
        raise ValueError(
            f"assign_splits: {len(table)} session(s) cannot fill train, val and test "
            "(splits are by session; at least 3 sessions are needed)"
        )
    # The unit of assignment is a group (e.g. a subject's sessions), stratified by the group's
    # most common stratum value; sessions are then mapped back to their group's split.
    group_col = group_by if group_by in table.columns else "session_id"
    table = table.assign(
        _unit=table[group_col]
        .astype(str)
        .where(table[group_col].notna(), "session:" + table["session_id"].astype(str))
    )
    strat = stratify_by if stratify_by in table.columns else None
    units = (
        table.groupby("_unit", sort=True)
        .agg(
            _stratum=(strat, lambda v: v.astype(str).mode().iloc[0])
            if strat
            else ("_unit", lambda v: "all")
        )
        .reset_index()
    )
    if len(units) < len(columns.SPLITS):
        raise ValueError(
            f"assign_splits: {len(units)} {group_col} group(s) cannot fill train, val and test "
            f"(splits keep each {group_col}'s sessions together; at least 3 groups are needed)"
        )
    groups = units.rename(columns={"_unit": "session_id"}).groupby("_stratum", sort=True)
    out: dict[str, str] = {}
    train_by_group: dict[str, list[str]] = {}
    for name, group in groups:
        ids = sorted(group["session_id"].astype(str))
        rng = np.random.default_rng([cfg.seed, zlib.crc32(str(name).encode())])
        ids = [ids[i] for i in rng.permutation(len(ids))]
        n = len(ids)
        n_test = round(n * cfg.test_fraction)
        n_val = round(n * cfg.val_fraction)
        if n >= 2 and n_test == 0:
            n_test = 1
        while n_test + n_val > n - 1 and n_test + n_val > 0:  # keep a training session
            if n_val > 0:
                n_val -= 1
            else:
                n_test -= 1
        for sid in ids[:n_test]:
            out[sid] = "test"
        for sid in ids[n_test : n_test + n_val]:
            out[sid] = "val"
        train_by_group[str(name)] = ids[n_test + n_val :]
        for sid in train_by_group[str(name)]:
            out[sid] = "train"
    for split in ("test", "val"):
        if split not in out.values():
            donor = max(sorted(train_by_group), key=lambda g: len(train_by_group[g]))
            out[train_by_group[donor].pop()] = split
    return {
        sid: out[unit]
        for sid, unit in zip(table["session_id"].astype(str), table["_unit"], strict=True)
    }


def dataset_version(
    samples_fingerprint: str,
    cfg: ShardConfig,
    extra: dict | None = None,
    spec_digest: str = "",
    window_s: float | None = None,
) -> str:
    """Content hash of the samples, the spec, the window, the shard config and `extra`: same
    input → same version."""
    payload = json.dumps(
        {
            "samples": samples_fingerprint,
            "spec": spec_digest,
            "window_s": window_s,
            "shard": cfg.model_dump(),
            "extra": extra or {},
        },
        sort_keys=True,
        default=str,
    )
    return "v-" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def _version_prefix(version: str) -> str:
    return join_key(DATASETS_PREFIX, version)


def load_manifest(store: ObjectStore, version: str) -> DatasetManifest:
    """Read `datasets/<version>/manifest.json` from the store."""
    key = join_key(_version_prefix(version), MANIFEST_NAME)
    return DatasetManifest.from_json(store.get_text(key), source=store.uri(key))


# ---- writing ---------------------------------------------------------------------------------


def _rejected_keys(rejected: pd.DataFrame | None) -> set[tuple[str, int]]:
    """(session, window) pairs to exclude; rows without a window index (files, streams) are not
    samples and were already handled by alignment through the presence mask."""
    if rejected is None or not len(rejected):
        return set()
    rows = rejected.dropna(subset=["window_index"])
    return {(str(s), int(w)) for s, w in zip(rows["session_id"], rows["window_index"], strict=True)}


def _read_part(
    store: ObjectStore, key: str, columns: list[str] | None = None
) -> tuple[bytes, pd.DataFrame]:
    """A part's bytes and its table; with `columns`, only those of them the part has (the heavy
    payload columns are then not decoded)."""
    with store.open_read(key) as stream:
        data = stream.read()
    try:
        part = pq.ParquetFile(io.BytesIO(data))
        if columns is not None:
            columns = [c for c in columns if c in part.schema_arrow.names]
        table = part.read(columns=columns)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise ValueError(
            f"{store.uri(key)}: not a readable aligned-sample parquet part ({exc})"
        ) from None
    return data, table.to_pandas()


def _fingerprint_parts(
    store: ObjectStore, part_keys: list[str], meta_columns: list[str]
) -> tuple[str, pd.DataFrame]:
    """Content hash over the parts (one in memory at a time) and the light columns of every row."""
    digest = hashlib.sha256()
    light = []
    for key in part_keys:
        data, table = _read_part(store, key, ["session_id", "window_index", "label", *meta_columns])
        digest.update(hashlib.sha256(data).digest())
        light.append(table)
        del data
    if not light:
        raise ValueError("write_shards: no aligned-sample parts were given")
    return digest.hexdigest(), pd.concat(light, ignore_index=True)


def _meta(row: dict[str, Any], meta_columns: list[str]) -> dict[str, str]:
    return {c: ("" if _missing(row.get(c)) else str(row.get(c))) for c in meta_columns}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _present(row: dict[str, Any], stream: str) -> bool:
    flag = row.get(columns.presence_column(stream), True)
    return bool(flag) and not is_absent(row.get(columns.payload_column(stream)))


def _to_float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(out) else out


@dataclass(frozen=True)
class _Members:
    """What a row becomes in a tar: (stream, member suffix, is text) per spec stream."""

    streams: list[tuple[str, str, bool]]
    label_index: dict[str, int]
    meta_columns: list[str]

    @classmethod
    def of(cls, spec: DatasetSpec) -> _Members:
        streams = []
        for name in spec.stream_names:
            kind = spec.kind_of(name)
            streams.append(
                (name, columns.shard_member(name, kind.shard_ext), kind.payload == "text")
            )
        return cls(streams, spec.labels.index(), list(spec.meta_columns))


def _row_to_sample(row: dict[str, Any], members: _Members) -> dict[str, Any]:
    """One aligned-sample row → a WebDataset sample dict (members absent for missing streams)."""
    label = row["label"]
    sample: dict[str, Any] = {
        "__key__": columns.sample_key(str(row["session_id"]), int(row["window_index"]))
    }
    presence = []
    for stream, member, _ in members.streams:
        present = _present(row, stream)
        presence.append(int(present))
        if present:
            payload = row[columns.payload_column(stream)]
            sample[member] = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    info = {
        "label": label,
        "label_index": members.label_index[label],
        "session_id": str(row["session_id"]),
        "window_index": int(row["window_index"]),
        "metadata": _meta(row, members.meta_columns),
        "presence": presence,
    }
    for col in ("t_start", "t_end", "label_overlap", "align_confidence"):
        if col in row:
            info[col] = _to_float(row[col])
    if "boundary" in row:
        info["boundary"] = bool(row["boundary"])
    sample[columns.SHARD_META_EXT] = json.dumps(info, sort_keys=True).encode("utf-8")
    return sample


class _SplitWriter:
    """Writes one split's shards into a temp dir, uploading each when it is full."""

    def __init__(self, out: ObjectStore, prefix: str, split: str, per_shard: int, tmp: Path):
        self.out, self.prefix, self.split, self.per_shard, self.tmp = (
            out,
            prefix,
            split,
            per_shard,
            tmp,
        )
        self.keys: list[str] = []
        self.checks: dict[str, ShardCheck] = {}
        self.writer: wds.TarWriter | None = None
        self.count = 0
        self.path: Path | None = None

    def write(self, sample: dict[str, Any]) -> None:
        if self.writer is None:
            name = f"{self.split}-{len(self.keys):06d}.tar"
            self.path = self.tmp / name
            # fixed mtime: the same samples give byte-identical tars
            self.writer = wds.TarWriter(str(self.path), mtime=0.0)
            self.keys.append(join_key(self.prefix, name))
        self.writer.write(sample)
        self.count += 1
        if self.count >= self.per_shard:
            self.flush()

    def flush(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        self.checks[self.keys[-1]] = ShardCheck.of_file(self.path, self.count)
        self.out.put_file(self.keys[-1], self.path)
        self.path.unlink()
        self.writer, self.count = None, 0


def write_shards(
    store: ObjectStore,
    spec: DatasetSpec,
    part_keys: list[str],
    rejected: pd.DataFrame | None,
    cfg: ShardConfig,
    extra: dict | None = None,
    train_only: pd.DataFrame | None = None,
    *,
    window_s: float,
    source: ObjectStore | None = None,
    outcome: dict | None = None,
) -> DatasetManifest:
    """Write `datasets/<version>/{split}-NNNNNN.tar` and `manifest.json`; returns the manifest.

    Parts are aligned-sample tables (`columns.sample_columns(spec)`). Rejected (session, window)
    pairs and rows without a label (marked boundary windows) are left out; `train_only` pairs
    (same columns) are left out of the train split only. When the version's manifest already
    exists, nothing is written and it is returned; `outcome`, when given, gets `reused` True
    then (False when this call wrote the version). Parts are read from `source` (default
    `store`), one at a time.
    """
    source = source or store
    part_keys = sorted(part_keys)
    # Two passes over the parts: the version (a content hash) and the split (which needs every
    # session's metadata) must be known before the first sample is written.
    group_col, strat_col = split_columns(spec, cfg)
    members = _Members.of(spec)
    classes = list(spec.labels.classes)
    fingerprint, light = _fingerprint_parts(source, part_keys, members.meta_columns)
    bad = _rejected_keys(rejected)
    not_train = _rejected_keys(train_only) - bad
    excluded = {
        "rejected": sorted(f"{s}:{w}" for s, w in bad),
        "rejected_from_train": sorted(f"{s}:{w}" for s, w in not_train),
    }
    digest = spec.digest()
    version = dataset_version(
        fingerprint, cfg, {**excluded, **(extra or {})}, spec_digest=digest, window_s=window_s
    )
    prefix = _version_prefix(version)
    manifest_key = join_key(prefix, MANIFEST_NAME)
    reused = store.exists(manifest_key)
    if outcome is not None:
        outcome["reused"] = reused
    if reused:
        return load_manifest(store, version)

    session_cols = [c for c in light.columns if c not in ("window_index", "label")]
    split_of = assign_splits(
        light[session_cols].drop_duplicates("session_id"), cfg, group_col, strat_col
    )

    stats = {
        s: {"n": 0, "labels": Counter(), "sessions": set(), "groups": Counter()}
        for s in columns.SPLITS
    }
    n_rejected = n_unlabelled = n_rejected_from_train = 0
    with tempfile.TemporaryDirectory(prefix="modalops-shards-") as tmp:
        writers = {
            s: _SplitWriter(store, prefix, s, cfg.samples_per_shard, Path(tmp))
            for s in columns.SPLITS
        }
        for key in part_keys:
            _, part = _read_part(source, key)
            for row in part.to_dict("records"):
                pair = (str(row["session_id"]), int(row["window_index"]))
                if pair in bad:
                    n_rejected += 1
                    continue
                label = row.get("label")
                if _missing(label):
                    n_unlabelled += 1
                    continue
                if label not in members.label_index:
                    raise ValueError(
                        f"{source.uri(key)}: session {row['session_id']} window "
                        f"{row['window_index']} has label {label!r}, expected one of {classes} "
                        f"(labels.classes of dataset spec {spec.name!r})"
                    )
                split = split_of[pair[0]]
                if split == "train" and pair in not_train:
                    n_rejected_from_train += 1
                    continue
                sample = _row_to_sample(row, members)
                writers[split].write(sample)
                st = stats[split]
                st["n"] += 1
                st["labels"][label] += 1
                st["sessions"].add(pair[0])
                if strat_col:
                    st["groups"][_meta(row, [strat_col])[strat_col]] += 1
            del part
            release_freed_memory()  # the part's pages, before the next part is read
        for w in writers.values():
            w.flush()

    splits = {
        s: SplitInfo(
            shards=writers[s].keys,
            n_samples=stats[s]["n"],
            sessions=sorted(stats[s]["sessions"]),
            label_counts={lab: stats[s]["labels"][lab] for lab in classes},
            group_counts={strat_col: dict(sorted(stats[s]["groups"].items()))} if strat_col else {},
            shard_checks=writers[s].checks,
        )
        for s in columns.SPLITS
    }
    manifest = DatasetManifest(
        version=version,
        store_uri=store.uri(""),
        prefix=prefix,
        splits=splits,
        label_counts={
            lab: sum(splits[s].label_counts[lab] for s in columns.SPLITS) for lab in classes
        },
        created_from={
            "source_uri": source.uri(""),
            "part_keys": part_keys,
            "samples_fingerprint": fingerprint,
            "shard_config": cfg.model_dump(),
            "group_by": group_col,
            "stratify_by": strat_col,
            "n_rejected": n_rejected,
            "n_rejected_from_train": n_rejected_from_train,
            "n_unlabelled": n_unlabelled,
            "extra": extra or {},
        },
        spec=spec.to_dict(),
        spec_digest=digest,
        window_s=float(window_s),
    )
    # the manifest is written last: its presence means every shard is complete
    store.put_text(manifest_key, manifest.to_json())
    return manifest


# ---- reading ---------------------------------------------------------------------------------


_NOT_REGULAR = (
    ("issym", "a symbolic link"),
    ("islnk", "a hard link"),
    ("ischr", "a character device"),
    ("isblk", "a block device"),
    ("isfifo", "a fifo"),
    ("isdir", "a folder"),
)
_PLAIN = "is not a plain '<key>.<suffix>' name (folders, leading dots and '..' are refused)"


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member may not be read (None: a plain regular file that stays in its folder)."""
    if not member.isreg():
        kind = next((what for test, what in _NOT_REGULAR if getattr(member, test)()), "special")
        return f"is {kind}, not a regular file (links and devices are refused)"
    name = member.name
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return f"is an absolute path; it {_PLAIN}"
    if ".." in name:
        return f"contains '..'; it {_PLAIN}"
    # where extracting it into a folder would put it (the rule of tarfile's 'data' filter)
    root = "/shard"
    if posixpath.commonpath([root, posixpath.normpath(posixpath.join(root, name))]) != root:
        return f"would land outside its folder when extracted; it {_PLAIN}"
    if not _MEMBER.match(name):
        return _PLAIN
    return None


def iter_tar_members(stream: IO[bytes], url: str) -> Iterator[dict[str, Any]]:
    """The one checked tar reader: every member of a tar stream as {'fname', 'data', '__url__'}.

    A member that is a link, a device, a folder, an absolute path, contains '..', would land
    outside its folder when extracted, or is not a plain `<key>.<suffix>` name is refused with a
    ValueError naming the shard URL and the member (tar-slip; webdataset's own reader skips
    links silently and reads any name).
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                problem = _member_problem(member)
                if problem:
                    raise ValueError(
                        f"{url}: tar member {member.name!r} {problem}; refusing to read this shard"
                    )
                handle = tar.extractfile(member)
                yield {"fname": member.name, "data": handle.read(), "__url__": url}
                tar.members = []  # streaming: do not keep every header in memory
    except tarfile.TarError as exc:
        raise ValueError(f"{url}: not a readable tar shard ({exc})") from None


def iter_tar_samples(stream: IO[bytes], url: str) -> Iterator[dict[str, Any]]:
    """The samples of one tar stream, grouped by key with webdataset's grouping, read through
    the checked reader `iter_tar_members` (every shard read in modalops goes through here)."""
    return group_by_keys(iter_tar_members(stream, url))


class _Hashing:
    """A read-only stream that hashes and counts the bytes read through it."""

    def __init__(self, inner: IO[bytes]):
        self.inner = inner
        self.digest = hashlib.sha256()
        self.n_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.digest.update(data)
        self.n_bytes += len(data)
        return data

    def drain(self) -> None:
        """Read to the end (a tar reader stops at its end-of-archive blocks, before the padding)."""
        while self.read(1 << 20):
            pass


def iter_checked_samples(
    stream: IO[bytes], url: str, check: ShardCheck | None
) -> Iterator[dict[str, Any]]:
    """The samples of one shard as they stream (`iter_tar_samples`), hashed on the way: at the
    end of the shard its sample count, size and sha256 must be those the manifest recorded, else
    ValueError naming the shard and the found and expected counts, so a shard cut at a member
    boundary never reads as a shorter one. `check` None (a manifest older than format /3): the
    samples are read unchecked."""
    if check is None:
        yield from iter_tar_samples(stream, url)
        return
    hashing = _Hashing(stream)
    n_samples = 0
    for sample in iter_tar_samples(hashing, url):
        n_samples += 1
        yield sample
    hashing.drain()
    problem = check.mismatch(url, n_samples, hashing.n_bytes, hashing.digest.hexdigest())
    if problem:
        raise ValueError(problem)


def check_shard_bytes(data: bytes, url: str, check: ShardCheck | None) -> None:
    """A whole shard's bytes against what the manifest recorded, before any sample is decoded
    (ValueError naming the shard). On a mismatch the shard is parsed once to count its samples
    for the message; a shard that does not parse raises that error instead (it names the
    member). `check` None: nothing to compare with."""
    if check is None:
        return
    digest = hashlib.sha256(data).hexdigest()
    if len(data) == check.n_bytes and digest == check.sha256:
        return
    n_samples = sum(1 for _ in iter_tar_samples(io.BytesIO(data), url))
    raise ValueError(check.mismatch(url, n_samples, len(data), digest))


class SampleReader:
    """WebDataset samples → raw sample dicts for one dataset spec (member names built once)."""

    def __init__(self, spec: DatasetSpec):
        self.members = _Members.of(spec)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """{'key', 'label', 'label_index', 'meta': {metadata..., 'session_id', 'window_index'},
        'streams': {stream: payload or None}}: what `raw_to_tensors` and the pyfunc accept."""
        try:
            info = json.loads(sample[columns.SHARD_META_EXT])
        except (KeyError, json.JSONDecodeError) as exc:
            raise ValueError(
                f"{sample.get('__url__')}: sample {sample.get('__key__')} has no valid json "
                f"member ({exc})"
            ) from None
        streams: dict[str, Any] = {}
        for stream, member, text in self.members.streams:
            data = sample.get(member)
            streams[stream] = data.decode("utf-8") if (text and data is not None) else data
        return {
            "key": sample["__key__"],
            "label": info["label"],
            "label_index": int(info["label_index"]),
            "meta": {
                **info.get("metadata", {}),
                "session_id": info.get("session_id"),
                "window_index": info.get("window_index"),
            },
            "streams": streams,
        }


def iter_raw_samples(store: ObjectStore, manifest: DatasetManifest, split: str) -> Iterator[dict]:
    """Every sample of a split in shard order, as raw sample dicts (for evaluation and serving
    checks), decoded with the spec in the manifest; each shard is checked against the manifest
    as it streams (`iter_checked_samples`)."""
    if split not in manifest.splits:
        raise KeyError(f"dataset {manifest.version} has no split {split!r}")
    reader = SampleReader(manifest.dataset_spec())
    info = manifest.splits[split]
    for key in info.shards:
        with store.open_read(key) as stream:
            for sample in iter_checked_samples(stream, store.uri(key), info.shard_checks.get(key)):
                yield reader(sample)
