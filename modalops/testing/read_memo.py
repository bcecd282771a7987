"""Results of a function of an object store, remembered by the answer of every read it made.

Fuzzing aligns hundreds of damaged copies of one tiny dataset, and most of them give align the
same input: a stream quarantined by different garbage is never read again, so its bytes do not
matter. `ReadMemo.run` records what each read of the store returned (a hash of the bytes, whether
a key exists, the keys listed) and gives a later call the remembered result only when its
`key` is equal and every one of those reads still answers the same; otherwise it runs again.

    memo = ReadMemo()
    result = memo.run(store, key_of_the_other_inputs, lambda s: align(s, ...))
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import IO, Any, TypeVar

from modalops.store import ObjectStore

T = TypeVar("T")
Read = tuple[str, str]  # (operation, key or prefix)


def _read(store: ObjectStore, op: str, key: str) -> tuple[str, Any]:
    """One read: (what it answered, as a comparable string; the value or the exception)."""
    try:
        if op == "exists":
            value: Any = store.exists(key)
            return str(value), value
        if op == "list":
            value = store.list(key)
            return hashlib.sha256("\n".join(value).encode()).hexdigest(), value
        value = store.get_bytes(key)
        return hashlib.sha256(value).hexdigest(), value
    except Exception as err:  # noqa: BLE001 - a failing read is an answer too, raised to the caller
        return f"{type(err).__name__}", err


class ReadRecorder(ObjectStore):
    """A read-only view of `inner` that records the answer of every read made through it."""

    def __init__(self, inner: ObjectStore):
        self.inner, self.root = inner, inner.root
        self.reads: dict[Read, str] = {}

    def _record(self, op: str, key: str) -> Any:
        answer, value = _read(self.inner, op, key)
        self.reads[(op, key)] = answer
        if isinstance(value, Exception):
            raise value
        return value

    def get_bytes(self, key: str) -> bytes:
        return self._record("get", key)

    def exists(self, key: str) -> bool:
        return self._record("exists", key)

    def list(self, prefix: str = "") -> list[str]:
        return self._record("list", prefix)

    def open_read(self, key: str) -> IO[bytes]:
        return io.BytesIO(self.get_bytes(key))

    def uri(self, key: str = "") -> str:
        return self.inner.uri(key)

    def put_bytes(self, key: str, data: bytes) -> str:
        raise PermissionError(f"ReadRecorder is read-only: put {key!r}")

    def delete(self, key: str) -> None:
        raise PermissionError(f"ReadRecorder is read-only: delete {key!r}")

    def sub(self, prefix: str) -> ObjectStore:
        # a store opened by URI would read around the recorder: refuse rather than miss reads
        raise NotImplementedError("reads through sub() would not be recorded")


class ReadMemo:
    """Remembered results per key, each with the reads it made; counts runs and replays."""

    def __init__(self) -> None:
        self._runs: dict[str, list[tuple[dict[Read, str], Any]]] = {}
        self.ran = 0
        self.replayed = 0

    def run(self, store: ObjectStore, key: str, fn: Callable[[ObjectStore], T]) -> T:
        """`fn(store)`, or the result of an earlier call with this key whose reads all answer
        the same now. `key` must cover every input of `fn` that is not read from the store."""
        now: dict[Read, str] = {}  # each read made at most once per call, however many runs

        def answers_same(reads: dict[Read, str]) -> bool:
            for read, answer in reads.items():
                if read not in now:
                    now[read] = _read(store, *read)[0]
                if now[read] != answer:
                    return False
            return True

        for reads, result in self._runs.get(key, []):
            if answers_same(reads):
                self.replayed += 1
                return result
        recorder = ReadRecorder(store)
        result = fn(recorder)
        self._runs.setdefault(key, []).append((recorder.reads, result))
        self.ran += 1
        return result
