"""The ``BlobStore`` contract: a content-addressed store of immutable byte blobs.

Owns the behaviour every backend shares: objects are addressed by :func:`~bmoe.storage.cid.cid_of`,
``put`` is idempotent (and re-writes an object whose stored copy went bad), ``get`` verifies
the bytes against the CID before returning them, and all CID arguments are validated and
normalised with :func:`~bmoe.storage.cid.parse_cid`. Backends only implement the raw primitives
(``_read``, ``_write``, ``_exists``, ``_remove``, ``_list``) and never see a malformed CID.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from bmoe.storage.cid import cid_of, parse_cid, verify_cid
from bmoe.storage.errors import CorruptObject, InvalidCID


def as_bytes(data: bytes) -> bytes:
    """``data`` as immutable ``bytes``; bytearray/memoryview are copied, anything else is a TypeError."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"blobs must be bytes, got {type(data).__name__}")


class BlobStore(ABC):
    """Content-addressed blob store. Subclasses implement the five ``_`` primitives."""

    # --- primitives (cid arguments are canonical CIDs) -------------------------------------
    @abstractmethod
    def _read(self, cid: str) -> bytes:
        """The stored bytes of ``cid``, unverified; raise :class:`ObjectNotFound` if absent."""

    @abstractmethod
    def _write(self, cid: str, data: bytes) -> None:
        """Store ``data`` under ``cid`` (replacing any copy), atomically."""

    @abstractmethod
    def _exists(self, cid: str) -> bool:
        """Whether something is stored under ``cid``."""

    @abstractmethod
    def _remove(self, cid: str) -> bool:
        """Remove ``cid``; return whether it was there."""

    @abstractmethod
    def _list(self) -> Iterator[str]:
        """Every stored CID, in sorted order."""

    # --- public API -------------------------------------------------------------------------
    def put(self, data: bytes) -> str:
        """Store ``data`` and return its CID. Storing the same bytes again is a no-op."""
        blob = as_bytes(data)
        cid = cid_of(blob)
        if self._exists(cid) and self._intact(cid):
            return cid
        self._write(cid, blob)
        return cid

    def get(self, cid: str) -> bytes:
        """The bytes addressed by ``cid``, verified.

        Raises :class:`InvalidCID`, :class:`ObjectNotFound`, or :class:`CorruptObject` when the
        stored bytes no longer match ``cid``.
        """
        key = parse_cid(cid)
        data = self._read(key)
        if not verify_cid(key, data):
            raise CorruptObject(f"object {key} is corrupt: stored bytes do not match the CID", cid=key)
        return data

    def size(self, cid: str) -> int:
        """Stored size in bytes of ``cid`` (unverified); raises :class:`ObjectNotFound` if absent."""
        return self._size(parse_cid(cid))

    def _size(self, cid: str) -> int:
        return len(self._read(cid))

    def has(self, cid: str) -> bool:
        """Whether an object is stored under ``cid`` (without verifying it)."""
        return self._exists(parse_cid(cid))

    def verify(self, cid: str) -> bool:
        """Whether the stored copy of ``cid`` is intact; raises :class:`ObjectNotFound` if absent."""
        return self._intact(parse_cid(cid))

    def delete(self, cid: str) -> bool:
        """Remove ``cid`` from the store; return whether it was stored."""
        return self._remove(parse_cid(cid))

    def sync(self) -> None:
        """Return once every object put so far is durable where this store keeps them. A store whose ``put``
        writes before it returns has nothing to wait for (:class:`~bmoe.storage.write_behind.WriteBehindStore`
        does)."""
        return None

    def cids(self) -> Iterator[str]:
        """Every stored CID, sorted."""
        return self._list()

    def __iter__(self) -> Iterator[str]:
        return self._list()

    def __contains__(self, cid: object) -> bool:
        if not isinstance(cid, str):
            return False
        try:
            return self.has(cid)
        except InvalidCID:
            return False

    def __len__(self) -> int:
        return sum(1 for _ in self._list())

    def _intact(self, cid: str) -> bool:
        return verify_cid(cid, self._read(cid))


class PublicApiStore(BlobStore):
    """A store that implements the public methods itself (a remote or a layered store): its primitives call them,
    for the base class's generic paths."""

    def _read(self, cid: str) -> bytes:
        return self.get(cid)

    def _write(self, cid: str, data: bytes) -> None:
        self.put(data)

    def _exists(self, cid: str) -> bool:
        return self.has(cid)

    def _remove(self, cid: str) -> bool:
        return self.delete(cid)

    def _list(self) -> Iterator[str]:
        return self.cids()


__all__ = ["BlobStore", "PublicApiStore", "as_bytes"]
