"""The object store under injected faults: errors, throttling, resets and slow writes.

Store-level operations go through modalops.testing.fault_proxy in front of moto's S3 server;
the S3 client retries (botocore standard mode, plus our re-read of a cut-off body), and no
reader ever sees a partial object, on S3 or on the local store.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from modalops.store import LocalStore, S3Store, StoreError
from modalops.testing.fault_proxy import FaultProxy, FaultRates


def _payload(i: int) -> bytes:
    # sizes from a few bytes to ~300 kB: a reset cuts small answers mid-headers, objects mid-body
    return os.urandom(7 + (i * 37_003) % 300_000)


def test_every_operation_survives_20_percent_faults(s3_server, s3_bucket):
    rates = FaultRates(error=0.06, throttle=0.06, reset=0.06, slow=0.02, slow_s=0.2)
    with FaultProxy(s3_server.url, rates, seed=11) as proxy:
        store = S3Store(f"{s3_bucket}/faults", endpoint_url=proxy.url, max_attempts=10)
        written = {f"obj/{i:02d}.bin": _payload(i) for i in range(12)}
        for key, data in written.items():
            store.put_bytes(key, data)
        for key, data in written.items():
            assert store.get_bytes(key) == data, key
            assert store.exists(key)
        for _ in range(6):
            assert store.list("obj") == sorted(written)
        assert not store.exists("obj/absent.bin")
    injected = sum(proxy.injected.values())
    print(
        f"\n{proxy.requests} requests, faults injected {dict(proxy.injected)}, "
        f"retries {store.retries}"
    )
    assert injected > 0 and store.retries > 0
    assert store.retries >= proxy.injected["error"] + proxy.injected["throttle"]
    # and straight from the server, without the proxy: every object whole, nothing else
    direct = S3Store(f"{s3_bucket}/faults", endpoint_url=s3_server.url)
    assert direct.list() == sorted(written)
    assert all(direct.get_bytes(k) == v for k, v in written.items())


def test_a_slow_write_is_never_visible_half_written(s3_server, s3_bucket):
    data = os.urandom(2_000_000)
    direct = S3Store(f"{s3_bucket}/slow", endpoint_url=s3_server.url)
    with FaultProxy(s3_server.url, FaultRates(slow=1.0, slow_s=1.5)) as proxy:
        slow = S3Store(f"{s3_bucket}/slow", endpoint_url=proxy.url)
        writer = threading.Thread(target=slow.put_bytes, args=("big.bin", data))
        writer.start()
        seen = []
        while writer.is_alive():
            if direct.exists("big.bin"):
                seen.append(len(direct.get_bytes("big.bin")))
            else:
                seen.append(0)
            time.sleep(0.05)
        writer.join()
    assert seen and all(n in (0, len(data)) for n in seen), sorted(set(seen))
    assert seen[0] == 0  # the write was still under way when we looked
    assert direct.get_bytes("big.bin") == data


def test_a_persistent_server_error_is_not_taken_for_absence(s3_server, s3_bucket):
    with FaultProxy(s3_server.url, FaultRates(error=1.0)) as proxy:
        store = S3Store(f"{s3_bucket}/down", endpoint_url=proxy.url, max_attempts=2)
        with pytest.raises(StoreError, match=r"s3://.*/down/k"):
            store.exists("k")
    assert proxy.requests >= 2  # retried before giving up


def test_local_writes_are_atomic_under_concurrent_readers(tmp_path):
    store = LocalStore(tmp_path)
    old, new = b"o" * 8_000_000, b"n" * 12_000_000
    source = tmp_path.parent / f"{tmp_path.name}-source.bin"
    source.write_bytes(new)
    store.put_bytes("x.bin", old)
    seen: set[int] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(len(store.get_bytes("x.bin")))
            assert store.list() == ["x.bin"]  # a writer's temp file is never listed

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(6):
            if i % 2 == 0:
                store.put_file("x.bin", source)  # copied to a temp file, then renamed
            else:
                store.put_bytes("x.bin", old)
    finally:
        done.set()
        reader.join()
    assert seen <= {len(old), len(new)} and seen
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]  # no temp file left


# ---- the fault table: counted losses, and docs/faults.md in step with the script ------------


def test_a_loss_is_counted_against_the_baseline():
    """benchmarks/faults.py's accounting: a sample missing, one added, a second version or a
    moved alias each make a read-back not intact, and the cell says how many of how many."""
    from benchmarks.faults import Left, count_loss

    base = Left({"train": {"a", "b", "c"}, "test": {"d"}}, ["1"], {"champion": "1"})
    same = Left({"train": {"a", "b", "c"}, "test": {"d"}}, ["1"], {"champion": "1"})
    cell, intact = count_loss([same], base)
    assert intact == [True]
    assert cell == (
        "0 of 4 samples (train 3/test 1 read back); versions [1], champion v1 "
        "(expected versions [1], champion v1)"
    )
    short = Left({"train": {"a", "b", "x"}}, ["1", "2"], {"champion": "2"})
    cell, intact = count_loss([same, short], base)
    assert intact == [True, False]
    assert cell.startswith("2 of 8 samples (2 read-backs; train 5/test 1 read back), 1 extra; ")
    assert "versions [1, 2], champion v2" in cell


def test_the_fault_table_in_the_docs_is_the_scripts():
    """docs/faults.md's table has the script's columns, every row as many cells, and a counted
    "data lost" in every row (N of M), as benchmarks/faults.py prints it."""
    import re

    from benchmarks.faults import HEADER
    from tests.conftest import REPO

    text = (REPO / "docs" / "faults.md").read_text()
    section = text.split("## The table", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]] for line in lines]
    assert tuple(rows[0]) == HEADER
    assert set(lines[1].replace("|", "")) == {"-"}
    body = rows[2:]
    assert body and all(len(r) == len(HEADER) for r in body), [len(r) for r in body]
    lost = HEADER.index("data lost")
    for row in body:
        assert re.search(r"\b\d+ of \d+ (samples|objects)\b|^baseline: \d+ samples", row[lost]), row
