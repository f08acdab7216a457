"""``MemoryStore``: the in-process ``BlobStore`` backend (a dict from CID to bytes).

A real backend, not a test double: used where objects need not outlive the process.
"""

from __future__ import annotations

from collections.abc import Iterator

from bmoe.storage.errors import ObjectNotFound
from bmoe.storage.store import BlobStore


class MemoryStore(BlobStore):
    """Blobs held in a dict; ``get`` still verifies every read."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def _read(self, cid: str) -> bytes:
        try:
            return self._blobs[cid]
        except KeyError:
            raise ObjectNotFound(cid, "memory store") from None

    def _write(self, cid: str, data: bytes) -> None:
        self._blobs[cid] = data

    def _exists(self, cid: str) -> bool:
        return cid in self._blobs

    def _remove(self, cid: str) -> bool:
        return self._blobs.pop(cid, None) is not None

    def _list(self) -> Iterator[str]:
        return iter(sorted(self._blobs))

    def __len__(self) -> int:
        return len(self._blobs)

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._blobs)} objects)"
