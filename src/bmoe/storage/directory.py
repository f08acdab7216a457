"""``DirectoryStore``: the embedded, persistent ``BlobStore`` backend (one file per object).

Layout: ``root/<shard>/<cid>`` where ``<shard>`` is the two characters before the last one of
the base32 CID (kubo flatfs' ``next-to-last/2`` scheme: the last character carries only a few
bits, the ones before it are uniformly distributed), so at most 1024 shard directories.

Writes are atomic: the bytes go to ``root/<shard>/.<cid>.<random>.tmp``, are flushed and
fsynced, then ``os.replace``-d onto the real name and the directory is fsynced; a crash leaves
at worst a dot-prefixed temp file, never a partial object under a CID name. Listing ignores
anything that is not a CID in its right shard. Reads are verified by ``BlobStore.get``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from bmoe.storage.cid import parse_cid
from bmoe.storage.errors import InvalidCID, ObjectNotFound
from bmoe.storage.store import BlobStore

TEMP_SUFFIX = ".tmp"


def shard_of(cid: str) -> str:
    """Shard directory name of a canonical CID (next-to-last two characters)."""
    return cid[-3:-1]


def _fsync_dir(path: Path) -> None:
    """Make a directory entry change durable (best effort where directories cannot be opened)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryStore(BlobStore):
    """Blobs stored as files under ``root``; survives restarts.

    ``create=False`` opens an existing store without creating ``root`` (an auditor reads, never
    writes); a missing root then holds no objects.
    """

    def __init__(self, root: Path | str, *, create: bool = True) -> None:
        self.root = Path(root)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, cid: str) -> Path:
        """The file that holds (or would hold) ``cid``."""
        key = parse_cid(cid)
        return self.root / shard_of(key) / key

    def _read(self, cid: str) -> bytes:
        try:
            return self.path_of(cid).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(cid, f"directory store {self.root}") from None

    def _write(self, cid: str, data: bytes) -> None:
        final = self.path_of(cid)
        shard = final.parent
        if not shard.is_dir():
            shard.mkdir(exist_ok=True)
            _fsync_dir(self.root)
        temp = shard / f".{cid}.{secrets.token_hex(8)}{TEMP_SUFFIX}"
        try:
            with open(temp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        _fsync_dir(shard)

    def _size(self, cid: str) -> int:
        try:
            return self.path_of(cid).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(cid, str(self.root)) from None

    def _exists(self, cid: str) -> bool:
        return self.path_of(cid).is_file()

    def _remove(self, cid: str) -> bool:
        try:
            self.path_of(cid).unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(self.path_of(cid).parent)
        return True

    def _list(self) -> Iterator[str]:
        return iter(sorted(self._scan()))

    def _scan(self) -> Iterator[str]:
        for shard in self.root.iterdir():
            if not shard.is_dir():
                continue
            for entry in shard.iterdir():
                name = entry.name
                if name.startswith(".") or not entry.is_file():
                    continue
                try:
                    key = parse_cid(name)
                except InvalidCID:
                    continue
                if key == name and shard_of(key) == shard.name:
                    yield key

    def __repr__(self) -> str:
        return f"DirectoryStore({str(self.root)!r})"
