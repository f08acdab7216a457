"""``DirectoryStore``: the embedded, persistent ``BlobStore`` backend (one file per object).

Layout: ``root/<shard>/<cid>`` where ``<shard>`` is the two characters before the last one of
the base32 CID (kubo flatfs' ``next-to-last/2`` scheme: the last character carries only a few
bits, the ones before it are uniformly distributed), so at most 1024 shard directories.

Writes are atomic: the bytes go to ``root/<shard>/.<cid>.<random>.tmp``, are flushed and
fsynced, then ``os.replace``-d onto the real name and the directory is fsynced; a crash leaves
at worst a dot-prefixed temp file, never a partial object under a CID name. Listing ignores
anything that is not a CID in its right shard. Reads are verified by ``BlobStore.get``.

Durability per object or per block (``batch=True``): a run's objects only need to be durable by the
time a block that names them is persisted, so a run directory's store writes each object atomically
(temp file, ``os.replace``) without its three fsyncs, and :meth:`DirectoryStore.flush` makes all of them
durable at once right before the ledger persists the block (one ``syncfs`` of the store's file system
on Linux, else an fsync of each written file and directory). A crash before the flush loses only
objects of a round that was never sealed. Removing an object never fsyncs: a removal lost in a crash
leaves a verified object behind, which costs space, not correctness.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import threading
from collections.abc import Callable, Iterator
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


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    """The C library's ``syncfs``, looked up once per process (``find_library`` runs a subprocess), or
    None where there is none."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True).syncfs  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def _syncfs(path: Path) -> bool:
    """``syncfs(2)`` on the file system holding ``path`` (Linux): every dirty file and directory of it
    reaches the disk in one call. False where it is unavailable or fails (the caller fsyncs instead)."""
    syncfs = _libc_syncfs()
    if syncfs is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return False
    try:
        return int(syncfs(fd)) == 0
    finally:
        os.close(fd)


class DirectoryStore(BlobStore):
    """Blobs stored as files under ``root``; survives restarts.

    ``create=False`` opens an existing store without creating ``root`` (an auditor reads, never
    writes); a missing root then holds no objects.
    """

    def __init__(self, root: Path | str, *, create: bool = True, batch: bool = False) -> None:
        self.root = Path(root)
        self.batch = batch  # True: objects become durable at flush(), not at each put
        self._unsynced: set[Path] = set()  # files and directories written since the last flush (batch)
        self._unsynced_lock = threading.Lock()  # a storage node writes from several threads
        self._flush_lock = threading.Lock()  # a flush returns only once any flush begun before it has finished
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
            self._durable_dir(self.root)
        temp = shard / f".{cid}.{secrets.token_hex(8)}{TEMP_SUFFIX}"
        try:
            with open(temp, "xb") as handle:
                handle.write(data)
                handle.flush()
                if not self.batch:
                    os.fsync(handle.fileno())
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        if self.batch:
            with self._unsynced_lock:
                self._unsynced.add(final)
        self._durable_dir(shard)

    def _durable_dir(self, path: Path) -> None:
        if self.batch:
            with self._unsynced_lock:
                self._unsynced.add(path)
        else:
            _fsync_dir(path)

    def sync(self) -> None:
        """Every object written so far durable (:meth:`flush`; nothing to do when each put fsyncs)."""
        self.flush()

    def flush(self) -> int:
        """Make every object written since the last flush durable (batch mode); how many paths it covered. Flushes
        run one at a time: one that finds nothing new to sync still waits for a flush in progress (which holds
        the paths it took) to end."""
        with self._flush_lock:
            with self._unsynced_lock:
                pending, self._unsynced = self._unsynced, set()
            if not pending:
                return 0
            if not _syncfs(self.root):
                for path in sorted(pending, key=lambda p: (p.is_dir(), str(p))):  # files, then their directories
                    if path.is_dir():
                        _fsync_dir(path)
                    else:
                        with contextlib.suppress(FileNotFoundError), open(path, "rb") as handle:
                            os.fsync(handle.fileno())
            return len(pending)

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
        return True  # not fsynced: a removal lost in a crash leaves a verified object behind, nothing worse

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
