"""A hash of immutable ``bytes``, remembered by the object's identity: the same object is hashed once.

In one process the same bytes object is often hashed several times on its way: an edge encodes its
result (CID and digest), the store hashes it again on ``put``, verifies it again on ``get``, and the
validator checks the digest again. A ``bytes`` object cannot change, so its hash cannot either:
:class:`IdentityMemo` keeps the value computed for each of the most recently hashed objects, holding the
object itself (so its ``id`` cannot be reused while the entry lives), up to a byte budget.

Only the very same object hits: bytes read from a disk or a socket are a new object and are hashed, so
every check on bytes that crossed a boundary still runs. A ``bytearray`` or ``memoryview`` (mutable) is
never remembered.

Must not know what the hash is for (CIDs, digests): it is given the function.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

MIN_BYTES = 4096  # smaller objects are hashed again: cheaper than the bookkeeping
MAX_BYTES = 32 << 20  # the objects an entry keeps alive, in all (a round's updated experts fit)


class IdentityMemo(Generic[T]):
    """``fn(data)`` for ``bytes`` objects, remembered by identity (the most recently used, within
    ``max_bytes`` of objects kept alive)."""

    def __init__(self, fn: Callable[[bytes], T], max_bytes: int = MAX_BYTES, min_bytes: int = MIN_BYTES) -> None:
        self.fn = fn
        self.max_bytes = max_bytes
        self.min_bytes = min_bytes
        self._entries: OrderedDict[int, tuple[bytes, T]] = OrderedDict()
        self._kept = 0  # bytes held by the entries
        self._lock = threading.Lock()  # a network node hashes on several threads
        self.hits = 0

    def __call__(self, data: bytes) -> T:
        if type(data) is not bytes or len(data) < self.min_bytes:
            return self.fn(data)
        key = id(data)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] is data:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[1]
        value = self.fn(data)
        with self._lock:
            if key not in self._entries and len(data) <= self.max_bytes:
                self._entries[key] = (data, value)
                self._kept += len(data)
                while self._kept > self.max_bytes:
                    _, (old, _) = self._entries.popitem(last=False)
                    self._kept -= len(old)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._kept = 0
