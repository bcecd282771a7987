"""ReadMemo (modalops/testing/read_memo.py): a remembered result is given back only while every
read it made answers the same; fuzzing's window counts rest on it."""

from __future__ import annotations

import pytest

from modalops.store import LocalStore
from modalops.testing.read_memo import ReadMemo


def test_replays_only_while_every_read_answers_the_same(tmp_path):
    store = LocalStore(tmp_path)
    store.put_bytes("dir/a", b"1")
    store.put_bytes("b", b"2")
    memo, calls = ReadMemo(), []

    def fn(s):
        calls.append(1)
        return s.get_bytes("dir/a") + (b"!" if s.exists("c") else b"") + str(s.list("dir")).encode()

    first = memo.run(store, "k", fn)
    assert first == b"1['dir/a']"
    store.put_bytes("b", b"changed")  # never read: the same inputs
    assert memo.run(store, "k", fn) == first and len(calls) == 1
    store.put_bytes("c", b"")  # an exists() answer changes
    assert memo.run(store, "k", fn) == b"1!['dir/a']" and len(calls) == 2
    store.put_bytes("dir/a", b"9")  # bytes read change
    assert memo.run(store, "k", fn) == b"9!['dir/a']" and len(calls) == 3
    store.put_bytes("dir/z", b"")  # a listing changes
    assert memo.run(store, "k", fn) == b"9!['dir/a', 'dir/z']" and len(calls) == 4
    assert memo.run(store, "another key", fn) == b"9!['dir/a', 'dir/z']" and len(calls) == 5
    assert (memo.ran, memo.replayed) == (5, 1)


def test_a_failed_read_is_an_answer_and_the_store_is_read_only(tmp_path):
    store, memo = LocalStore(tmp_path), ReadMemo()

    def fn(s):
        try:
            return s.get_bytes("x").decode()
        except FileNotFoundError:
            return "absent"

    assert memo.run(store, "k", fn) == "absent"
    assert memo.run(store, "k", fn) == "absent" and memo.replayed == 1
    store.put_bytes("x", b"here")
    assert memo.run(store, "k", fn) == "here" and memo.ran == 2
    with pytest.raises(PermissionError):
        memo.run(store, "k2", lambda s: s.put_bytes("y", b""))
    with pytest.raises(NotImplementedError):
        memo.run(store, "k3", lambda s: s.sub("dir"))
    assert not store.exists("y")
