"""ChainStore: append rules, persistence, WAL, metadata, bad files, crash recovery."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import bmoe
from bmoe.ledger.blocks import GENESIS_PREV_HASH, Block, block_hash, block_to_bytes
from bmoe.ledger.chain_check import check_chain
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import ChainStoreError, InvalidBlock
from bmoe.ledger.keys import derive_identity
from bmoe.ledger.pow import seal_block
from bmoe.ledger.transactions import sign_transaction

MINER = derive_identity(11, "miner")
SRC = str(Path(bmoe.__file__).resolve().parents[1])


def _block(height: int, prev: str, blob: int = 10, difficulty: int = 2) -> Block:
    txs = [sign_transaction(MINER, "task", {"h": height, "blob": "x" * blob}, height)]
    return seal_block(MINER, height, prev, txs, timestamp=height, difficulty=difficulty)


def _chain(n: int, **kwargs: int) -> list[Block]:
    blocks: list[Block] = []
    prev = GENESIS_PREV_HASH
    for h in range(n):
        blocks.append(_block(h, prev, **kwargs))
        prev = block_hash(blocks[-1])
    return blocks


CHAIN = _chain(6)


def _filled(path: Path, n: int = 6) -> ChainStore:
    store = ChainStore(path)
    for block in CHAIN[:n]:
        store.append(block)
    return store


def test_empty_store(tmp_path: Path) -> None:
    with ChainStore(tmp_path / "c.db") as store:
        assert store.height() == -1
        assert store.head() is None
        assert store.head_hash() is None
        assert list(store.iter_raw()) == []
        assert list(store.iter_blocks()) == []


def test_append_and_read_back(tmp_path: Path) -> None:
    with ChainStore(tmp_path / "c.db") as store:
        for i, block in enumerate(CHAIN):
            assert store.append(block) == block_hash(block)
            assert store.height() == i
            assert store.head() == block
            assert store.head_hash() == block_hash(block)
        assert store.block_at(2) == CHAIN[2]
        assert list(store.iter_blocks()) == CHAIN
        assert list(store.iter_raw()) == [(b.header.height, block_hash(b), block_to_bytes(b)) for b in CHAIN]


def test_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _filled(path, 3).close()
    with ChainStore(path) as store:
        assert store.height() == 2
        assert store.head() == CHAIN[2]
        store.append(CHAIN[3])
    with ChainStore(path) as store:
        assert list(store.iter_blocks()) == CHAIN[:4]


@pytest.mark.parametrize(
    ("blocks", "bad", "reason"),
    [
        ([], CHAIN[1], "expected height 0"),
        ([], _block(0, "ab" * 32), "does not match head hash"),
        (CHAIN[:2], CHAIN[1], "expected height 2"),
        (CHAIN[:2], CHAIN[3], "expected height 2"),
        (CHAIN[:2], _block(2, block_hash(CHAIN[0])), "does not match head hash"),
    ],
)
def test_append_refuses_blocks_that_do_not_extend_the_head(
    tmp_path: Path, blocks: list[Block], bad: Block, reason: str
) -> None:
    with ChainStore(tmp_path / "c.db") as store:
        for block in blocks:
            store.append(block)
        with pytest.raises(InvalidBlock, match=reason):
            store.append(bad)
        assert store.height() == len(blocks) - 1


def test_append_refuses_malformed_block(tmp_path: Path) -> None:
    bad = Block(CHAIN[0].header, CHAIN[0].transactions, proposer_signature="nope")
    with ChainStore(tmp_path / "c.db") as store, pytest.raises(InvalidBlock, match="proposer_signature"):
        store.append(bad)


def test_append_does_not_verify_pow(tmp_path: Path) -> None:
    """Linkage only: PoW and signatures are chain_check's job (documented)."""
    block = CHAIN[0]
    weak = dataclasses.replace(block, header=dataclasses.replace(block.header, difficulty=200))
    with ChainStore(tmp_path / "c.db") as store:
        store.append(weak)
        assert store.height() == 0


def test_block_at_missing_height(tmp_path: Path) -> None:
    with _filled(tmp_path / "c.db", 2) as store, pytest.raises(ChainStoreError, match="no block at height 5"):
        store.block_at(5)


def test_iter_raw_crosses_batches(tmp_path: Path) -> None:
    blocks = _chain(300, blob=0, difficulty=0)
    with ChainStore(tmp_path / "c.db") as store:
        for block in blocks:
            store.append(block)
        rows = list(store.iter_raw())
    assert [r[0] for r in rows] == list(range(300))
    assert check_chain(rows).height == 299


def test_wal_and_synchronous_full(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with _filled(path, 2) as store:
        assert store.pragmas() == {"journal_mode": "wal", "synchronous": "FULL"}
        other = sqlite3.connect(path)
        try:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert other.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == 2
        finally:
            other.close()


def test_meta(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with ChainStore(path) as store:
        assert store.get_meta("config_hash") is None
        assert store.get_meta("config_hash", "none") == "none"
        store.set_meta("config_hash", "abc")
        store.set_meta("config_hash", "def")
    with ChainStore(path) as store:
        assert store.get_meta("config_hash") == "def"


def test_closed_store_raises(tmp_path: Path) -> None:
    store = ChainStore(tmp_path / "c.db")
    store.close()
    store.close()
    with pytest.raises(ChainStoreError, match="is closed"):
        store.height()


def test_not_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not the blocks you are looking for\n" * 200)
    with pytest.raises(ChainStoreError) as info:
        ChainStore(path)
    message = str(info.value)
    assert "\n" not in message
    assert "notes.txt" in message and "not a usable SQLite database" in message


def test_directory_path(tmp_path: Path) -> None:
    with pytest.raises(ChainStoreError, match="cannot open chain store"):
        ChainStore(tmp_path)


def _corrupt_truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _corrupt_page2(data: bytes) -> bytes:
    return data[:4106] + b"\xa5" * 200 + data[4306:]


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_page2])
def test_corrupted_database(tmp_path: Path, corrupt: object) -> None:
    path = tmp_path / "c.db"
    with ChainStore(path) as store:
        for block in _chain(30, blob=3000, difficulty=0):
            store.append(block)
    assert not Path(f"{path}-wal").exists()  # checkpointed on close: the main file holds everything
    path.write_bytes(corrupt(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(ChainStoreError, match="not a usable SQLite database"):
        ChainStore(path)


def test_wrong_schema(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE blocks (id INTEGER PRIMARY KEY, payload TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(ChainStoreError, match="table 'blocks' has columns"):
        ChainStore(path)


# -- crash recovery with a real subprocess ------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from bmoe.ledger.blocks import GENESIS_PREV_HASH
    from bmoe.ledger.chainstore import ChainStore
    from bmoe.ledger.keys import derive_identity
    from bmoe.ledger.pow import seal_block
    from bmoe.ledger.transactions import sign_transaction

    miner = derive_identity(11, "miner")
    store = ChainStore(sys.argv[1])
    prev = store.head_hash() or GENESIS_PREV_HASH
    height = store.height() + 1
    while True:
        txs = [sign_transaction(miner, "task", {"h": height, "blob": "x" * 20000}, height)]
        prev = store.append(seal_block(miner, height, prev, txs, timestamp=height, difficulty=2))
        print(height, flush=True)
        height += 1
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _writer_block(height: int, prev: str) -> Block:
    """The block the WRITER script appends at ``height`` (it is deterministic)."""
    txs = [sign_transaction(MINER, "task", {"h": height, "blob": "x" * 20000}, height)]
    return seal_block(MINER, height, prev, txs, timestamp=height, difficulty=2)


def _run_and_kill(path: Path, appends: int, extra_delay: float) -> tuple[int, int]:
    """Start a writer, wait for ``appends`` reported appends, kill -9 it.

    Returns (last height read before the kill, last height the writer reported at all).
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, env=_env(), text=True
    )
    assert proc.stdout is not None
    seen: list[int] = []
    try:
        while len(seen) < appends:
            line = proc.stdout.readline()
            assert line, f"writer exited early with {proc.wait()}"
            seen.append(int(line))
        time.sleep(extra_delay)  # land the kill somewhere inside a later append
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    reported = [int(x) for x in rest.split()]
    return seen[-1], (reported or seen)[-1]


def test_kill_9_loses_at_most_the_block_being_appended(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    expected: list[str] = []  # hashes of the deterministic chain the writer builds
    height = -1
    for round_, delay in enumerate([0.0, 0.001, 0.003, 0.0005]):
        read, reported = _run_and_kill(path, appends=5, extra_delay=delay)
        assert read >= height + 5, f"round {round_}: the writer did not resume from the head"
        with ChainStore(path) as store:
            report = check_chain(store.iter_raw())
            rows = list(store.iter_raw())
        # Every block whose append returned is there; at most one more (committed, not yet reported).
        assert reported <= report.height <= reported + 1
        # The stored chain is a prefix of the chain the writer meant to build.
        while len(expected) <= report.height:
            prev = expected[-1] if expected else GENESIS_PREV_HASH
            expected.append(block_hash(_writer_block(len(expected), prev)))
        assert [digest for _h, digest, _d in rows] == expected[: report.height + 1]
        height = report.height


KILL_BEFORE_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    from bmoe.ledger.chainstore import ChainStore
    from bmoe.ledger.keys import derive_identity
    from bmoe.ledger.pow import seal_block
    from bmoe.ledger.transactions import sign_transaction

    class Proxy:
        def __init__(self, conn):
            self.conn = conn
        def execute(self, sql, *args):
            if sql == "COMMIT":
                os.kill(os.getpid(), signal.SIGKILL)
            return self.conn.execute(sql, *args)
        def close(self):
            self.conn.close()

    miner = derive_identity(11, "miner")
    store = ChainStore(sys.argv[1])
    height = store.height() + 1
    txs = [sign_transaction(miner, "task", {"h": height, "blob": "x" * 20000}, height)]
    block = seal_block(miner, height, store.head_hash(), txs, timestamp=height, difficulty=2)
    store._conn = Proxy(store._conn)
    store.append(block)
    print("unreachable", flush=True)
    """
)


def test_kill_9_inside_append_transaction(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _filled(path, 4).close()
    proc = subprocess.run(
        [sys.executable, "-c", KILL_BEFORE_COMMIT, str(path)], capture_output=True, env=_env(), text=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "unreachable" not in proc.stdout
    with ChainStore(path) as store:
        assert store.height() == 3
        assert list(store.iter_blocks()) == CHAIN[:4]
        assert check_chain(store.iter_raw()).height == 3
        store.append(CHAIN[4])  # the store is writable again: no stale lock, no torn row
        assert store.height() == 4
