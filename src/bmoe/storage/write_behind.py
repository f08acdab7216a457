"""``WriteBehindStore``: objects usable at once, made durable on the backing store in the background.

Owns taking storage off a round's critical path without taking it out of the protocol. ``put`` keeps the
bytes in memory and returns their CID at once; a few writer threads write them to the backing store (storage
nodes, an IPFS node) meanwhile, in batches where the backing store takes them (``put_many``: one request per
storage node). ``get`` answers from memory first (bytes hashed when they were put),
else from the backing store, which verifies (and keeps what it read). :meth:`sync` returns once every object
put so far is on the backing store, and raises :class:`~bmoe.storage.errors.StorageError` naming what is not:
the round calls it before it seals, so every object a sealed block names is stored (replicated, synced) before
the block is sealed. A write that failed in the background is tried once more, in :meth:`sync`,
before it counts as failed.

Durable batches (``durable_batches``, issue 24): a backing store whose ``put_many(blobs, durable=True)`` returns
only once the batch is durable (storage nodes: the batch and a ``syncfs`` in one request) makes each batch
durable as it is written, so :meth:`sync` waits only for the writes in flight; it asks the backing store to sync
only what was written otherwise (one by one, or retried) since its last sync, often nothing.

Memory holds the most recent objects up to ``keep_bytes``; only objects already durable are dropped.
Must not know what the objects are, or who reads them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterator

from bmoe.storage.cid import cid_of, parse_cid
from bmoe.storage.errors import ObjectNotFound, StorageError
from bmoe.storage.store import BlobStore, PublicApiStore, as_bytes

DEFAULT_KEEP_BYTES = 256 * 1024 * 1024
DEFAULT_BATCH_BYTES = 8 * 1024 * 1024  # one backing write (a storage node's POST /batch) at most


class WriteBehindStore(PublicApiStore):
    """A memory layer over ``backing``: puts return at once, :meth:`sync` waits until they are durable."""

    def __init__(self, backing: BlobStore, *, writers: int = 2, keep_bytes: int = DEFAULT_KEEP_BYTES,
                 batch_bytes: int = DEFAULT_BATCH_BYTES, durable_batches: bool = False) -> None:
        """``durable_batches``: write batches with ``backing.put_many(blobs, durable=True)``, which returns once
        they are durable (:class:`~bmoe.net.store.client.HttpBlobStore`)."""
        if writers < 1:
            raise ValueError(f"writers must be >= 1, got {writers}")
        self.backing = backing
        self.durable_batches = durable_batches
        self.keep_bytes = keep_bytes
        self.batch_bytes = batch_bytes
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._recent: OrderedDict[str, bytes] = OrderedDict()  # oldest first
        self._recent_bytes = 0
        self._queue: deque[str] = deque()  # put, not handed to a writer yet
        self._pending: set[str] = set()  # put, not known durable (queued, being written, or failed)
        self._writing = 0  # batches the writers are on
        self._failed: dict[str, str] = {}  # CID -> why its background write failed
        self._unsynced_writes = 0  # writes completed and not made durable by a backing sync yet
        self._closing = False
        self._writers = [threading.Thread(target=self._write_loop, name=f"write-behind-{i}", daemon=True)
                         for i in range(writers)]
        for thread in self._writers:
            thread.start()
        self.written = 0  # objects made durable in the background
        self.retried = 0  # background writes that failed and were tried again in sync()

    def __repr__(self) -> str:
        return f"WriteBehindStore({self.backing!r}, {len(self._pending)} pending)"

    # --- the public API, with memory first ----------------------------------------------------
    def put(self, data: bytes) -> str:
        blob = as_bytes(data)
        cid = cid_of(blob)
        with self._lock:
            if cid in self._recent:
                self._recent.move_to_end(cid)
                return cid
            self._recent[cid] = blob
            self._recent_bytes += len(blob)
            self._queue.append(cid)
            self._pending.add(cid)
            self._changed.notify_all()
            self._trim()
        return cid

    def _write_loop(self) -> None:
        """A writer: take what is queued (up to ``batch_bytes``), write it in one call when the backing store takes
        batches (``put_many``: storage nodes), else one by one."""
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._changed.wait()
                if not self._queue:
                    return
                batch: dict[str, bytes] = {}
                size = 0
                while self._queue and (not batch or size + len(self._recent[self._queue[0]]) <= self.batch_bytes):
                    cid = self._queue.popleft()
                    batch[cid] = self._recent[cid]
                    size += len(batch[cid])
                self._writing += 1
            error = None
            try:
                put_many = getattr(self.backing, "put_many", None)
                if callable(put_many) and self.durable_batches:
                    put_many(list(batch.values()), durable=True)
                elif callable(put_many):
                    put_many(list(batch.values()))
                else:
                    for blob in batch.values():
                        self.backing.put(blob)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._writing -= 1
                if error is None and not (self.durable_batches and callable(put_many)):
                    self._unsynced_writes += 1
                for cid in batch:
                    if error is None:
                        self._pending.discard(cid)
                        self.written += 1
                    else:
                        self._failed[cid] = error
                self._changed.notify_all()

    def keep(self, cid: str, data: bytes) -> None:
        """Hold ``data``, already checked against ``cid``, for reads only: somebody else makes it durable (objects
        pushed to an edge; the backing store's own copies read through)."""
        blob = as_bytes(data)
        with self._lock:
            if cid in self._recent:
                self._recent.move_to_end(cid)
                return
            self._recent[cid] = blob
            self._recent_bytes += len(blob)
            self._trim()

    def get(self, cid: str) -> bytes:
        key = parse_cid(cid)
        with self._lock:
            blob = self._recent.get(key)
            if blob is not None:
                self._recent.move_to_end(key)
                return blob
        blob = self.backing.get(key)  # verified there
        self.keep(key, blob)
        return blob

    def has(self, cid: str) -> bool:
        key = parse_cid(cid)
        with self._lock:
            if key in self._recent:
                return True
        return self.backing.has(key)

    def held(self, cid: str) -> bool:
        """Whether the bytes of ``cid`` are in memory here (a read costs no transfer)."""
        with self._lock:
            return parse_cid(cid) in self._recent

    def pending(self) -> int:
        """Objects put but not yet known durable."""
        with self._lock:
            return len(self._pending)

    def sync(self) -> None:
        """Return once every object put so far is durable on the backing store; raise :class:`StorageError`
        naming the objects that are not (each failed background write is tried once more here)."""
        with self._lock:
            while self._queue or self._writing:
                self._changed.wait()
            failed, self._failed = dict(self._failed), {}
        errors: list[str] = []
        for cid in failed:
            self.retried += 1
            with self._lock:
                blob = self._recent.get(cid)
            try:
                if blob is None:
                    raise ObjectNotFound(cid, "write-behind memory")
                self.backing.put(blob)
            except Exception as exc:
                errors.append(f"{cid}: {exc}")
                with self._lock:
                    self._failed[cid] = str(exc)
                continue
            with self._lock:
                self._pending.discard(cid)
                self.written += 1
                self._unsynced_writes += 1
        with self._lock:
            self._trim()
            unsynced = self._unsynced_writes
        if errors:
            raise StorageError(f"{len(errors)} object(s) not stored on {self.backing!r}: " + "; ".join(errors[:3]))
        if unsynced or not self.durable_batches:
            self.backing.sync()  # the backing store's own batch (storage nodes: one syncfs each)
            with self._lock:
                self._unsynced_writes -= unsynced

    def close(self) -> None:
        """Finish the background writes (best effort), then close the backing store's client."""
        with self._lock:
            self._closing = True
            self._changed.notify_all()
        for thread in self._writers:
            thread.join(timeout=30)
        close = getattr(self.backing, "close", None)
        if callable(close):
            close()

    def _trim(self) -> None:
        """Drop the oldest durable objects while memory holds more than ``keep_bytes`` (lock held)."""
        for cid in list(self._recent):
            if self._recent_bytes <= self.keep_bytes:
                return
            if cid in self._pending:
                continue
            self._recent_bytes -= len(self._recent.pop(cid))

    def delete(self, cid: str) -> bool:
        key = parse_cid(cid)
        self.sync()
        with self._lock:
            blob = self._recent.pop(key, None)
            if blob is not None:
                self._recent_bytes -= len(blob)
        return self.backing.delete(key) or blob is not None

    def cids(self) -> Iterator[str]:
        self.sync()
        return self.backing.cids()
