"""Decode each shard once per machine: a local cache of the tensors the kinds' codecs made.

Decoding (JPEG, WAV → spectrogram, text hashing) costs far more than a training step of the
small models here. The first time a shard is read for some streams, every one of its samples
(of the reader's share) is decoded, and each stream's tensors are written as one `.npy` array
next to a small `light.json` (label, label index, metadata, presence per spec stream). Every
later epoch, and every other model over the same shards (a single-stream baseline reuses what
the fused model decoded), reads those arrays instead of the tar.

An entry's key covers everything the tensors depend on: the shard URL (a dataset version's
shards never change: the version is a content hash) and, where the manifest recorded it, the
shard's sha256, the spec's digest, the window length, the stream's codec source file, and the
reader's share of the shard (sample-level splitting). An entry holding another number of samples
than the manifest says the share has is decoded again from the (checked) shard. The
arrays are the codec's own float32 output, so a cached epoch yields exactly the tensors the
decoding path yields. Files are written to a temporary name and renamed, so concurrent readers
(ranks, loader workers, parallel models) see a whole entry or none; arrays are loaded with
`allow_pickle=False`. When the folder grows past its size limit the least recently used entries
are removed. The default folder, at a predictable name in the shared temp folder, is checked to
be this user's alone before it is used (`private_dir`); folders this module makes are 0700.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modalops.shard import ShardCheck
from modalops.train.inputs import SpecCodecs

LIGHT_NAME = "light.json"
FORMAT = "modalops.decoded/1"


@dataclass
class DecodedSample:
    """One sample as the loader yields it, plus what weighted sampling reads (label, meta)."""

    label: str
    label_index: int
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    presence: torch.Tensor


def default_cache_dir() -> Path:
    """`$MODALOPS_DECODED_CACHE`, else `<system temp>/modalops-decoded-<uid>`: node-local disk
    (a home folder is often a network one), made private to this user by `private_dir`."""
    env = os.environ.get("MODALOPS_DECODED_CACHE")
    if env:
        return Path(env)
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return private_dir(Path(tempfile.gettempdir()) / f"modalops-decoded-{uid}")


def private_dir(path: Path) -> Path:
    """`path` as a folder only this user can use: made with mode 0700, or, where it exists, a
    real folder (not a link) of this user's that nobody else can write to.

    Its name is predictable in a temp folder every local user can write to, so another user can
    create it first and plant tensors that training would read (issue 23): a folder owned by
    someone else, a link, or one that group or others may write to is refused with a
    PermissionError saying what to do. One of this user's that others may only read (older
    modalops made it 0755) holds nothing they could have written; it is closed to 0700 and used.
    """
    with contextlib.suppress(FileExistsError):  # then it is checked as found
        path.mkdir(mode=0o700)
    found = path.lstat()
    mode = stat.S_IMODE(found.st_mode)
    uid = os.getuid() if hasattr(os, "getuid") else found.st_uid
    problem = None
    if not stat.S_ISDIR(found.st_mode):
        problem = "is not a folder (a link or a file)"
    elif found.st_uid != uid:
        problem = f"is owned by uid {found.st_uid}, not by you (uid {uid})"
    elif mode & 0o022:
        problem = f"has mode {mode:04o}: group or others may write to it"
    if problem:
        raise PermissionError(
            f"decode cache folder {path} {problem}; another local user could plant tensors "
            "that training reads. Set $MODALOPS_DECODED_CACHE (or train.decode_cache_dir) to a "
            f"folder of yours, or remove {path} if it is yours to remove."
        )
    if mode & 0o077:
        path.chmod(0o700)
    return path


class DecodedCache:
    """Decoded tensors of shards, per stream, under one local folder."""

    def __init__(self, root: str | Path, codecs: SpecCodecs, spec_digest: str, max_gb: float):
        self.root = Path(root)
        self.codecs = codecs
        self.max_bytes = int(max_gb * 1e9)
        self.base = {
            "format": FORMAT,
            "spec": spec_digest,
            "window_s": codecs.window_s,
        }
        # the decoder's own source is part of the key: a changed codec never reads old tensors
        self.codec_hash = {s.name: _source_hash(s.codec.__file__) for s in codecs.streams}
        self.index = {s.name: i for i, s in enumerate(codecs.streams)}

    def _entry(self, url: str, share: tuple[int, int] | None, check: ShardCheck | None) -> Path:
        sha256 = check.sha256 if check is not None else None
        text = json.dumps(
            {**self.base, "url": url, "sha256": sha256, "share": share}, sort_keys=True
        )
        key = hashlib.sha256(text.encode()).hexdigest()[:32]
        return self.root / key[:2] / key

    def _array_path(self, entry: Path, stream: str) -> Path:
        return entry / f"s{self.index[stream]}-{self.codec_hash[stream]}.npy"

    def has(
        self,
        url: str,
        share: tuple[int, int] | None,
        wanted: Sequence[str],
        check: ShardCheck | None = None,
    ) -> bool:
        """Whether an entry for `wanted` exists (its files; content is checked when read)."""
        entry = self._entry(url, share, check)
        return (entry / LIGHT_NAME).exists() and all(
            self._array_path(entry, s).exists() for s in wanted
        )

    def samples(
        self,
        url: str,
        share: tuple[int, int] | None,
        wanted: Sequence[str],
        read_raw: Callable[[], Iterable[dict[str, Any]]],
        check: ShardCheck | None = None,
    ) -> list[DecodedSample]:
        """The shard's samples (of `share` = (reader, readers), or all) decoded for `wanted`;
        from the cache where it has them, else by decoding `read_raw()` (raw sample dicts in
        shard order) and storing the result. Streams not wanted come back as the codec's
        absent tensor, as in the decoding path. `check` (the manifest's record of the shard)
        keys the entry to the shard's bytes and says how many samples it must hold."""
        entry = self._entry(url, share, check)
        light = self._read_light(entry)
        if light is not None and check is not None and len(light) != _share_size(check, share):
            light = None  # not what the manifest says this share holds: decode it again
        arrays: dict[str, np.ndarray] = {}
        if light is not None:
            for name in wanted:
                found = self._load(entry, name, len(light))
                if found is not None:
                    arrays[name] = found
        missing = [s for s in wanted if s not in arrays]
        if missing:
            raws = list(read_raw())
            light = [_light_of(raw, self.codecs) for raw in raws]
            decoded = {name: self._decode_stream(name, raws) for name in missing}
            self._write(entry, light, decoded)
            arrays.update(decoded)
        self._touch(entry)
        return self._assemble(light, arrays)

    def _load(self, entry: Path, name: str, n: int) -> np.ndarray | None:
        """A cached stream array, or None if absent or unreadable (then it is decoded again)."""
        path = self._array_path(entry, name)
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        expected = (n, *self.codecs.by_name[name].shape)
        return arr if arr.shape == expected and arr.dtype == np.float32 else None

    def _decode_stream(self, name: str, raws: list[dict[str, Any]]) -> np.ndarray:
        codec = self.codecs.by_name[name]
        out = np.empty((len(raws), *codec.shape), dtype=np.float32)
        for i, raw in enumerate(raws):
            # the same call as SpecCodecs: a present payload decoded, an absent one zeros
            out[i] = self.codecs.decode_one(name, raw["streams"]).numpy()
        return out

    def _assemble(self, light: list[dict], arrays: dict[str, np.ndarray]) -> list[DecodedSample]:
        absent = {
            s.name: self.codecs.decode_one(s.name, {})
            for s in self.codecs.streams
            if s.name not in arrays
        }
        tensors = {name: torch.from_numpy(arr) for name, arr in arrays.items()}
        # one presence tensor per shard; each sample gets a row of it (no per-sample tensor)
        presence = torch.tensor([item["presence"] for item in light], dtype=torch.float32)
        out = []
        for i, item in enumerate(light):
            # a copy of the row, not a view: a view keeps the whole shard's array alive for as
            # long as any one of its samples waits in the shuffle buffer, which then holds the
            # arrays of the last dozen shards instead of its own samples
            row = {name: t[i].clone() for name, t in tensors.items()}
            row.update(absent)
            out.append(
                DecodedSample(
                    label=item["label"],
                    label_index=int(item["label_index"]),
                    meta=item["meta"],
                    tensors={s: row[s] for s in self.codecs.names},
                    presence=presence[i],
                )
            )
        return out

    def _read_light(self, entry: Path) -> list[dict] | None:
        path = entry / LIGHT_NAME
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def _write(self, entry: Path, light: list[dict], arrays: dict[str, np.ndarray]) -> None:
        for folder in (self.root, entry.parent, entry):  # each 0700 when this makes it
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, arr in arrays.items():
            _atomic(self._array_path(entry, name), lambda fh, a=arr: np.save(fh, a))
        # light.json last: an entry whose light file exists has whole arrays for what it lists
        _atomic(entry / LIGHT_NAME, lambda fh: fh.write(json.dumps(light).encode()))
        self._evict(keep=entry)

    def _touch(self, entry: Path) -> None:
        now = time.time()
        with contextlib.suppress(OSError):  # evicted by another process meanwhile: harmless
            os.utime(entry / LIGHT_NAME, (now, now))

    def _evict(self, keep: Path) -> None:
        """Remove least recently used entries while the folder is over its size limit (never
        `keep`, the entry just written)."""
        entries = []
        total = 0
        for light in self.root.glob(f"*/*/{LIGHT_NAME}"):
            entry = light.parent
            try:
                size = sum(p.stat().st_size for p in entry.iterdir())
                used = light.stat().st_mtime
            except OSError:
                continue
            entries.append((used, size, entry))
            total += size
        for _, size, entry in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if entry == keep:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            total -= size


@functools.lru_cache(maxsize=64)
def _source_hash(path: str) -> str:
    """A codec source file's hash, read once per process (a cache is built every epoch)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _share_size(check: ShardCheck, share: tuple[int, int] | None) -> int:
    """Samples of the shard in `share` (reader, readers): every readers-th from reader."""
    return check.n_samples if share is None else len(range(share[0], check.n_samples, share[1]))


def _light_of(raw: dict[str, Any], codecs: SpecCodecs) -> dict[str, Any]:
    return {
        "label": raw["label"],
        "label_index": int(raw["label_index"]),
        "meta": raw["meta"],
        "presence": codecs.presence(raw["streams"]).tolist(),
    }


def _atomic(path: Path, write: Callable[[Any], Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
