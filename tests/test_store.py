"""The object store: the same behaviour on a local directory and on an S3-compatible endpoint."""

from __future__ import annotations

import pytest

from modalops.store import LocalStore, S3Store, StoreError, open_store, read_stream


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_store(str(tmp_path / "store"))
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"{bucket}/prefix")


def test_round_trip_list_exists_delete(store, tmp_path):
    store.put_bytes("a/b/one.bin", b"\x00\x01")
    store.put_text("a/two.txt", "zwei")
    src = tmp_path / "f.txt"
    src.write_text("file")
    store.put_file("c/f.txt", src)
    assert store.get_bytes("a/b/one.bin") == b"\x00\x01"
    assert store.get_text("a/two.txt") == "zwei"
    assert store.list("a") == ["a/b/one.bin", "a/two.txt"]
    assert store.list() == ["a/b/one.bin", "a/two.txt", "c/f.txt"]
    assert store.exists("c/f.txt") and not store.exists("c/nope")
    with store.open_read("c/f.txt") as fh:
        assert fh.read() == b"file"
    with read_stream(store.uri("c/f.txt")) as fh:
        assert fh.read() == b"file"
    store.delete("c/f.txt")
    assert not store.exists("c/f.txt")
    assert store.sub("a").list() == ["b/one.bin", "two.txt"]


def test_missing_object_names_the_uri(store):
    with pytest.raises(FileNotFoundError) as err:
        store.get_bytes("missing/key")
    assert "missing/key" in str(err.value)


def test_open_store_dispatch(tmp_path):
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    assert isinstance(open_store("s3://bucket/x"), S3Store)
    with pytest.raises(StoreError, match="unsupported"):
        open_store("gs://bucket")
    with pytest.raises(StoreError, match="escapes"):
        LocalStore(tmp_path).put_bytes("../outside", b"x")
