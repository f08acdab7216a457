"""WriteBehindStore: puts usable at once, durable on the backing store by sync(), failures named there."""

from __future__ import annotations

import threading

import pytest

from bmoe.storage import MemoryStore, StorageError
from bmoe.storage.cid import cid_of
from bmoe.storage.write_behind import WriteBehindStore


class GatedStore(MemoryStore):
    """A real memory store whose writes wait for a gate (a slow storage node) and can be made to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.failures = 0  # writes still to fail

    def _write(self, cid: str, data: bytes) -> None:
        self.gate.wait(timeout=10)
        if self.failures:
            self.failures -= 1
            raise StorageError(f"node refused {cid}")
        super()._write(cid, data)


def test_put_is_readable_at_once_and_durable_after_sync() -> None:
    backing = GatedStore()
    store = WriteBehindStore(backing)
    cid = store.put(b"expert weights")
    assert cid == cid_of(b"expert weights")
    assert store.get(cid) == b"expert weights" and store.has(cid)
    assert not backing.has(cid) and store.pending() == 1  # the write waits on the slow node
    backing.gate.set()
    store.sync()
    assert backing.get(cid) == b"expert weights" and store.pending() == 0
    store.close()


def test_sync_retries_a_failed_write_once_then_names_what_is_missing() -> None:
    backing = GatedStore()
    backing.gate.set()
    backing.failures = 1
    store = WriteBehindStore(backing)
    cid = store.put(b"a result")
    store.sync()  # the background write failed; the retry in sync stored it
    assert backing.has(cid) and store.retried == 1
    backing.failures = 2
    lost = store.put(b"another result")
    with pytest.raises(StorageError, match=lost):
        store.sync()
    assert store.pending() == 1 and not backing.has(lost)
    store.sync()  # the node recovered: the next sync stores it
    assert backing.has(lost) and store.pending() == 0


def test_reads_go_through_to_the_backing_store_and_are_kept() -> None:
    backing = MemoryStore()
    cid = backing.put(b"stored by the publisher")
    store = WriteBehindStore(backing)
    assert not store.held(cid)
    assert store.get(cid) == b"stored by the publisher"
    assert store.held(cid)
    backing.delete(cid)
    assert store.get(cid) == b"stored by the publisher"  # served from memory now


def test_memory_drops_only_durable_objects_beyond_its_budget() -> None:
    backing = GatedStore()
    store = WriteBehindStore(backing, keep_bytes=10)
    first = store.put(b"0123456789")
    second = store.put(b"abcdefghij")
    assert store.held(first) and store.held(second)  # neither is durable yet: both stay
    backing.gate.set()
    store.sync()
    store.put(b"klmnopqrst")
    assert not store.held(first) and store.get(first) == b"0123456789"  # dropped, read back from the node


def test_kept_objects_are_not_written() -> None:
    backing = MemoryStore()
    store = WriteBehindStore(backing)
    cid = cid_of(b"pushed by the validator")
    store.keep(cid, b"pushed by the validator")
    store.sync()
    assert store.get(cid) == b"pushed by the validator" and not backing.has(cid)
