"""Durable, append-only block storage in SQLite.

Owns the on-disk chain: one ``blocks(height, hash, data)`` table holding each block's
canonical bytes, and a small ``meta(key, value)`` table for run metadata (e.g. the
config hash).  ``append`` enforces only linkage (next height, prev_hash == head
hash); PoW, signatures and Merkle roots are verified by ``chain_check``.

Durability: WAL journal mode with ``synchronous=FULL``.  In WAL mode NORMAL already
survives a killed process, but on power loss / OS crash it may roll back the last
commits; FULL fsyncs the WAL on every commit, so a block that ``append`` returned for
(and whose hash may already have been announced to peers) is never silently lost.
Each append is a single ``BEGIN IMMEDIATE`` transaction, so a process killed mid-way
loses at most the block being appended and never leaves a torn row.

Anchor: given ``anchor=PATH``, the store replaces that small file (:mod:`bmoe.ledger.head_anchor`)
after each committed append with the new head's height and hash, and refuses to open a chain that
no longer holds the block its anchor names (blocks lost from a truncated or corrupted WAL).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from bmoe.ledger.blocks import (
    GENESIS_PREV_HASH,
    Block,
    block_error,
    block_from_bytes,
    block_hash,
    block_to_bytes,
)
from bmoe.ledger.errors import ChainStoreError, InvalidBlock
from bmoe.ledger.head_anchor import HeadAnchor, read_head_anchor, write_head_anchor

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS blocks ("
    "height INTEGER PRIMARY KEY, hash TEXT UNIQUE NOT NULL, data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
)
_EXPECTED_COLUMNS = {
    "blocks": [("height", "INTEGER"), ("hash", "TEXT"), ("data", "BLOB")],
    "meta": [("key", "TEXT"), ("value", "TEXT")],
}
_BATCH = 256
_HEAD_SQL = "SELECT height, hash FROM blocks ORDER BY height DESC LIMIT 1"
_INSERT_SQL = "INSERT INTO blocks (height, hash, data) VALUES (?, ?, ?)"
_BATCH_SQL = "SELECT height, hash, data FROM blocks WHERE height > ? ORDER BY height LIMIT ?"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class ChainStore:
    """An append-only chain of blocks in a SQLite file.  Usable as a context manager.

    Thread-safe (one connection guarded by a lock).  Opening runs ``PRAGMA
    quick_check`` so a non-SQLite or corrupted file fails fast with
    :class:`ChainStoreError`.

    ``readonly=True`` opens an existing chain for reading only: no schema is created, a missing
    table is an error, and appends fail.  SQLite still creates ``-wal``/``-shm`` files beside a
    read-only WAL database, so an auditor opens a private copy (:func:`bmoe.ledger.snapshot.chain_snapshot`).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, anchor: Path | None = None) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.anchor = anchor
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            if readonly:
                conn = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
            else:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise ChainStoreError(f"cannot open chain store {self.path}: {_one_line(exc)}") from None
        try:
            self._setup(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise ChainStoreError(
                f"cannot open chain store {self.path}: not a usable SQLite database ({_one_line(exc)})"
            ) from None
        except ChainStoreError:
            conn.close()
            raise
        self._conn = conn
        if anchor is not None:
            try:
                self._check_anchor(anchor)
            except ChainStoreError:
                self.close()
                raise
            if not readonly:
                _remove_torn_anchors(anchor)


    def _check_anchor(self, anchor: Path) -> None:
        recorded = read_head_anchor(anchor)
        if recorded is None:
            return
        row = self._query("SELECT hash FROM blocks WHERE height = ?", (recorded.height,))
        if not row or row[0][0] != recorded.head_hash:
            raise ChainStoreError(f"chain store {self.path} no longer holds block {recorded.height} "
                                  f"({recorded.head_hash[:16]}...) that {anchor} records as sealed: blocks were lost "
                                  "or changed; audit it, and resume from a copy that holds them")

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout = 10000")
        if not self.readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ChainStoreError(f"cannot open chain store {self.path}: WAL mode unavailable ({mode})")
            conn.execute("PRAGMA synchronous = FULL")
        check = conn.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            detail = "; ".join(str(row[0]) for row in check[:3])
            raise ChainStoreError(f"cannot open chain store {self.path}: database is corrupted ({detail})")
        if not self.readonly:
            for statement in _SCHEMA:
                conn.execute(statement)
        for table, expected in _EXPECTED_COLUMNS.items():
            columns = [(row[1], str(row[2]).upper()) for row in conn.execute(f"PRAGMA table_info({table})")]
            if not columns and self.readonly:
                if table == "meta":  # run metadata only; nothing sealed lives there
                    continue
                raise ChainStoreError(f"chain store {self.path} has no {table!r} table: not a bmoe chain, "
                                      "or its table was dropped")
            if columns != expected:
                raise ChainStoreError(
                    f"cannot open chain store {self.path}: table {table!r} has columns {columns}, "
                    f"expected {expected}"
                )

    # -- plumbing -------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ChainStoreError(f"chain store {self.path} is closed")
        return self._conn

    def close(self) -> None:
        """Close the store (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ChainStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def pragmas(self) -> dict[str, str]:
        """The durability settings in force: ``journal_mode`` and ``synchronous``."""
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        with self._lock:
            db = self._db()
            try:
                mode = db.execute("PRAGMA journal_mode").fetchone()[0]
                sync = db.execute("PRAGMA synchronous").fetchone()[0]
            except sqlite3.Error as exc:
                raise ChainStoreError(f"chain store {self.path}: {_one_line(exc)}") from None
        return {"journal_mode": str(mode).lower(), "synchronous": names.get(int(sync), str(sync))}

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            db = self._db()
            try:
                return db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise ChainStoreError(f"chain store {self.path}: {_one_line(exc)}") from None

    # -- blocks ---------------------------------------------------------------------------

    def append(self, block: Block) -> str:
        """Append ``block`` atomically and return its hash.

        Raises :class:`InvalidBlock` if the block is malformed, its height is not
        ``height() + 1``, or its prev_hash is not the head hash (``GENESIS_PREV_HASH``
        for height 0).  Does not verify PoW or signatures.
        """
        reason = block_error(block)
        if reason is not None:
            height = block.header.height if isinstance(getattr(block.header, "height", None), int) else None
            raise InvalidBlock(height, reason)
        data = block_to_bytes(block)
        digest = block_hash(block)
        header = block.header
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    row = db.execute(_HEAD_SQL).fetchone()
                    head_height, head_hash = (-1, GENESIS_PREV_HASH) if row is None else row
                    if header.height != head_height + 1:
                        raise InvalidBlock(
                            header.height, f"expected height {head_height + 1} (store head is {head_height})"
                        )
                    if header.prev_hash != head_hash:
                        raise InvalidBlock(
                            header.height,
                            f"prev_hash {header.prev_hash[:16]}… does not match head hash {head_hash[:16]}…",
                        )
                    db.execute(_INSERT_SQL, (header.height, digest, data))
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                raise InvalidBlock(header.height, f"rejected by store: {_one_line(exc)}") from None
            except sqlite3.Error as exc:
                raise ChainStoreError(f"chain store {self.path}: append failed: {_one_line(exc)}") from None
            if self.anchor is not None:  # after the commit: an anchor never names a block the chain lacks
                write_head_anchor(self.anchor, HeadAnchor(header.height, digest))
        return digest

    def height(self) -> int:
        """Height of the head block, or -1 when the store is empty."""
        row = self._query("SELECT MAX(height) FROM blocks")[0]
        return -1 if row[0] is None else int(row[0])  # type: ignore[call-overload]

    def head(self) -> Block | None:
        """The head block, or None when the store is empty."""
        rows = self._query("SELECT data FROM blocks ORDER BY height DESC LIMIT 1")
        return block_from_bytes(bytes(rows[0][0])) if rows else None  # type: ignore[arg-type]

    def head_hash(self) -> str | None:
        """Hash of the head block as stored, or None when the store is empty."""
        rows = self._query("SELECT hash FROM blocks ORDER BY height DESC LIMIT 1")
        return str(rows[0][0]) if rows else None

    def block_at(self, height: int) -> Block:
        """The block at ``height``; raises :class:`ChainStoreError` if there is none."""
        rows = self._query("SELECT data FROM blocks WHERE height = ?", (height,))
        if not rows:
            raise ChainStoreError(f"chain store {self.path}: no block at height {height}")
        return block_from_bytes(bytes(rows[0][0]))  # type: ignore[arg-type]

    def iter_raw(self) -> Iterator[tuple[int, str, bytes]]:
        """Stored rows ``(height, hash, data)`` in height order, exactly as stored (for audit).

        Reads in batches, so appends made while iterating are picked up and the lock
        is not held between batches.
        """
        after = -(2**63)
        while True:
            rows = self._query(_BATCH_SQL, (after, _BATCH))
            yield from rows  # type: ignore[misc]
            if len(rows) < _BATCH:
                return
            after = rows[-1][0]  # type: ignore[assignment]

    def iter_blocks(self) -> Iterator[Block]:
        """Parsed blocks in height order (raises :class:`InvalidBlock` on an unreadable row)."""
        for _height, _digest, data in self.iter_raw():
            yield block_from_bytes(bytes(data))

    # -- metadata -------------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        """Set a metadata value (e.g. ``config_hash``), replacing any previous one."""
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("meta key and value must be strings")
        with self._lock:
            db = self._db()
            try:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            except sqlite3.Error as exc:
                raise ChainStoreError(f"chain store {self.path}: set_meta failed: {_one_line(exc)}") from None

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """A metadata value, or ``default`` if unset."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return default if not rows or rows[0][0] is None else str(rows[0][0])


def _remove_torn_anchors(anchor: Path) -> None:
    """Remove what a process killed while replacing ``anchor`` left: ``write_atomically``'s temporary files (the
    anchor itself is whole: the old one or the new one, never a torn one)."""
    for stale in anchor.parent.glob(f".{anchor.name}.*"):
        stale.unlink(missing_ok=True)
