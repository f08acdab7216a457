"""A private, read-only copy of a chain file, for auditors.

Owns one promise: reading a chain never writes into what is read. SQLite creates ``-wal`` and
``-shm`` files beside a WAL database even for a read-only connection, so the auditor copies the
database and its write-ahead log (the log holds committed blocks not yet checkpointed) into a
temporary directory and opens the copy read-only. Audit a stopped run: a copy taken while a writer
appends may miss the newest block, never shows a torn one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bmoe.fileio import open_regular_file
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import ChainStoreError

WAL_SUFFIX = "-wal"


def _copy(source: Path, target: Path, what: str) -> None:
    """Copy the regular file ``source`` through fileio's checked reader: a FIFO or device is refused unopened."""
    try:
        with open_regular_file(source) as handle, open(target, "wb") as out:
            shutil.copyfileobj(handle, out)
    except OSError as exc:
        raise ChainStoreError(f"cannot read {what} {source}: {exc.strerror or exc}") from None


@contextmanager
def chain_snapshot(path: Path) -> Iterator[ChainStore]:
    """Open a read-only copy of the chain at ``path`` (and its WAL); the original is never opened for writing."""
    if not path.exists():
        raise ChainStoreError(f"chain file {path} does not exist")
    wal = path.with_name(path.name + WAL_SUFFIX)
    with tempfile.TemporaryDirectory(prefix="bmoe-audit-") as scratch:
        copy = Path(scratch) / path.name
        _copy(path, copy, "chain file")
        if wal.exists():
            _copy(wal, copy.with_name(copy.name + WAL_SUFFIX), "write-ahead log")
        try:
            with ChainStore(copy, readonly=True) as chain:
                yield chain
        except ChainStoreError as exc:  # name the user's file, not the private copy
            raise ChainStoreError(str(exc).replace(str(copy), str(path))) from None
