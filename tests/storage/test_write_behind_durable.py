"""WriteBehindStore with durable batches: a batch is durable when its write returns, so sync() waits for the
writes in flight and syncs the backing store only for what was written otherwise (a retried write)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from bmoe.storage import MemoryStore, StorageError
from bmoe.storage.write_behind import WriteBehindStore


class BatchingStore(MemoryStore):
    """A real memory store with ``put_many`` that records which batches were asked to be durable, counts its
    syncs, and whose batch writes can be made to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.durable_batches: list[bool] = []
        self.syncs = 0
        self.failing_batches = 0
        self._lock = threading.Lock()

    def put_many(self, blobs: Sequence[bytes], *, durable: bool = False) -> list[str]:
        with self._lock:
            if self.failing_batches:
                self.failing_batches -= 1
                raise StorageError("node refused the batch")
            self.durable_batches.append(durable)
        return [self.put(blob) for blob in blobs]

    def sync(self) -> None:
        with self._lock:
            self.syncs += 1


def test_durable_batches_need_no_sync_of_the_backing_store() -> None:
    backing = BatchingStore()
    store = WriteBehindStore(backing, durable_batches=True)
    cids = [store.put(f"expert update {i}".encode()) for i in range(5)]
    store.sync()
    assert all(backing.has(cid) for cid in cids) and store.pending() == 0
    assert backing.durable_batches and all(backing.durable_batches)
    assert backing.syncs == 0
    store.close()


def test_a_retried_write_is_synced_once_by_sync() -> None:
    backing = BatchingStore()
    backing.failing_batches = 1
    store = WriteBehindStore(backing, writers=1, durable_batches=True)
    cid = store.put(b"a result")
    store.sync()  # the batch failed in the background; sync() put it again, one by one, and synced
    assert backing.has(cid) and store.retried == 1 and backing.syncs == 1
    store.sync()  # nothing written since
    assert backing.syncs == 1
    store.close()


def test_without_durable_batches_every_sync_syncs_the_backing_store() -> None:
    backing = BatchingStore()
    store = WriteBehindStore(backing)
    cid = store.put(b"gate weights")
    store.sync()
    store.sync()
    assert backing.has(cid) and backing.durable_batches == [False] and backing.syncs == 2
    store.close()
