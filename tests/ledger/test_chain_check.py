"""check_chain: full verification of stored rows, naming the block (and tx) at fault."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bmoe.ledger.blocks import GENESIS_PREV_HASH, Block, BlockHeader, block_hash, block_to_bytes, header_hash
from bmoe.ledger.chain_check import ChainReport, check_chain
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import ChainIntegrityError, LedgerError
from bmoe.ledger.keys import Identity, derive_identity
from bmoe.ledger.merkle import merkle_root
from bmoe.ledger.pow import meets_difficulty, mine, seal_block
from bmoe.ledger.transactions import Transaction, sign_transaction, tx_hash

MINER = derive_identity(3, "miner")
EDGE = derive_identity(3, "edge")
DIFFICULTY = 6


def _txs(height: int, n: int = 3) -> list[Transaction]:
    payloads = [{"h": height, "i": i, "loss": 0.5} for i in range(n)]
    return [
        sign_transaction(EDGE if i % 2 else MINER, "commitment", payload, height * 10 + i)
        for i, payload in enumerate(payloads)
    ]


def _seal_header(identity: Identity, header: BlockHeader, txs: list[Transaction]) -> Block:
    """Sign an arbitrary header (used to build blocks that break one specific rule)."""
    return Block(header, tuple(txs), identity.sign(bytes.fromhex(header_hash(header))))


def _chain(n: int = 6, replace: dict[int, Callable[[str], Block]] | None = None) -> list[Block]:
    """A valid chain of n blocks; ``replace[h](prev_hash)`` builds block h instead."""
    blocks: list[Block] = []
    prev = GENESIS_PREV_HASH
    for h in range(n):
        if replace and h in replace:
            block = replace[h](prev)
        else:
            block = seal_block(MINER, h, prev, _txs(h), timestamp=1000 + h, difficulty=DIFFICULTY)
        blocks.append(block)
        prev = block_hash(block)
    return blocks


def _rows(blocks: list[Block]) -> list[tuple[int, str, bytes]]:
    return [(b.header.height, block_hash(b), block_to_bytes(b)) for b in blocks]


def _store(path: Path, blocks: list[Block]) -> None:
    with ChainStore(path) as store:
        for block in blocks:
            store.append(block)


def _fails(rows: list[tuple[int, str, bytes]], **kwargs: object) -> ChainIntegrityError:
    with pytest.raises(ChainIntegrityError) as info:
        check_chain(rows, **kwargs)  # type: ignore[arg-type]
    return info.value


VALID = _chain()


def test_valid_chain_report() -> None:
    report = check_chain(_rows(VALID))
    assert report == ChainReport(
        height=5, head_hash=block_hash(VALID[-1]), blocks=6, transactions=18, signatures=18 + 6
    )


def test_empty_chain() -> None:
    assert check_chain([]) == ChainReport(height=-1, head_hash=None, blocks=0, transactions=0, signatures=0)


def test_valid_chain_from_store(tmp_path: Path) -> None:
    _store(tmp_path / "c.db", VALID)
    with ChainStore(tmp_path / "c.db") as store:
        assert check_chain(store.iter_raw()).head_hash == block_hash(VALID[-1])


def _edit_row(path: Path, height: int, column: str, value: object) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"UPDATE blocks SET {column} = ? WHERE height = ?", (value, height))
        conn.commit()
    finally:
        conn.close()


def test_changed_byte_in_stored_row_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _store(path, VALID)
    data = block_to_bytes(VALID[3])
    at = data.index(b'"loss":0.5') + len(b'"loss":0.')
    _edit_row(path, 3, "data", data[:at] + b"6" + data[at + 1 :])
    with ChainStore(path) as store:
        err = _fails(list(store.iter_raw()))
    assert err.height == 3
    assert str(err).startswith("block 3: merkle_root")


def test_changed_hash_column_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _store(path, VALID)
    _edit_row(path, 2, "hash", "ff" * 32)
    with ChainStore(path) as store:
        err = _fails(list(store.iter_raw()))
    assert err.height == 2
    assert "stored hash ffffffffffffffff… != header hash" in str(err)


def test_data_stored_as_text_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    _store(path, VALID)
    _edit_row(path, 4, "data", block_to_bytes(VALID[4]).decode())
    with ChainStore(path) as store:
        err = _fails(list(store.iter_raw()))
    assert str(err) == "block 4: block data is str, not bytes"


def test_every_single_byte_change_is_detected_and_names_the_block() -> None:
    rows = _rows(VALID[:3])
    height, digest, data = rows[1]
    for i in range(len(data)):
        new = b"0" if data[i : i + 1] != b"0" else b"1"
        tampered = [rows[0], (height, digest, data[:i] + new + data[i + 1 :]), rows[2]]
        err = _fails(tampered)
        assert err.height == 1, f"byte {i}: {err}"


def test_bad_transaction_signature() -> None:
    def forged(prev: str) -> Block:
        txs = _txs(2)
        txs[1] = dataclasses.replace(txs[1], payload={**txs[1].payload, "loss": 0.0})  # signed for 0.5
        return seal_block(MINER, 2, prev, txs, timestamp=1002, difficulty=DIFFICULTY)

    blocks = _chain(replace={2: forged})
    err = _fails(_rows(blocks))
    bad_hash = tx_hash(blocks[2].transactions[1])
    assert (err.height, err.tx_index, err.tx_hash) == (2, 1, bad_hash)
    assert str(err) == f"block 2: transaction 1 ({bad_hash[:16]}…): bad signature"


def test_broken_prev_link(tmp_path: Path) -> None:
    blocks = _chain(replace={4: lambda prev: seal_block(MINER, 4, "ab" * 32, _txs(4), 1004, DIFFICULTY)})
    path = tmp_path / "c.db"
    _store(path, blocks[:4])
    conn = sqlite3.connect(path)  # ChainStore.append would refuse it: write the row directly
    conn.execute("INSERT INTO blocks VALUES (?, ?, ?)", _rows(blocks)[4])
    conn.commit()
    conn.close()
    with ChainStore(path) as store:
        err = _fails(list(store.iter_raw()))
    assert err.height == 4
    assert "prev_hash abababababababab… does not link to" in str(err)


def test_genesis_must_link_to_zero_hash() -> None:
    blocks = _chain(1, replace={0: lambda prev: seal_block(MINER, 0, "11" * 32, _txs(0), 1000, DIFFICULTY)})
    err = _fails(_rows(blocks))
    assert err.height == 0 and "does not link to 0000000000000000…" in str(err)


def test_bad_merkle_root() -> None:
    def wrong_root(prev: str) -> Block:
        txs = _txs(1)
        header = BlockHeader(
            1, prev, merkle_root([tx_hash(t) for t in txs[:2]]), 1001, MINER.address, "pow", DIFFICULTY, 0, ""
        )
        return _seal_header(MINER, mine(header), txs)

    err = _fails(_rows(_chain(replace={1: wrong_root})))
    assert err.height == 1
    assert str(err).startswith("block 1: merkle_root") and "!= computed" in str(err)


def test_insufficient_pow() -> None:
    def weak(prev: str) -> Block:
        txs = _txs(5)
        root = merkle_root([tx_hash(t) for t in txs])
        header = BlockHeader(5, prev, root, 1005, MINER.address, "pow", 16, 0, "")
        while meets_difficulty(header_hash(header), 16):
            header = dataclasses.replace(header, nonce=header.nonce + 1)
        return _seal_header(MINER, header, txs)

    err = _fails(_rows(_chain(replace={5: weak})))
    assert str(err) == "block 5: insufficient proof of work for difficulty 16"


def test_bad_proposer_signature() -> None:
    def impostor(prev: str) -> Block:
        block = seal_block(MINER, 3, prev, _txs(3), timestamp=1003, difficulty=DIFFICULTY)
        return dataclasses.replace(block, proposer_signature=EDGE.sign(bytes.fromhex(block_hash(block))))

    err = _fails(_rows(_chain(replace={3: impostor})))
    assert err.height == 3 and "bad proposer signature" in str(err)


def test_header_height_must_match_row() -> None:
    rows = _rows(VALID)
    rows[2] = (2, rows[3][1], rows[3][2])
    err = _fails(rows)
    assert str(err) == "block 2: header says height 3"


def test_missing_block() -> None:
    rows = _rows(VALID)
    err = _fails(rows[:2] + rows[3:])
    assert str(err) == "block 2: missing: the next stored row has height 3"


def test_min_difficulty() -> None:
    assert check_chain(_rows(VALID), min_difficulty=DIFFICULTY).blocks == 6
    err = _fails(_rows(VALID), min_difficulty=DIFFICULTY + 1)
    assert str(err) == f"block 0: difficulty {DIFFICULTY} below required {DIFFICULTY + 1}"


def test_on_block_hook() -> None:
    seen: list[tuple[int, str]] = []

    def record(block: Block, digest: str) -> None:
        seen.append((block.header.height, digest))

    check_chain(_rows(VALID), on_block=record)
    assert seen == [(b.header.height, block_hash(b)) for b in VALID]

    def only_edge_may_propose(block: Block, digest: str) -> None:
        if block.header.proposer != EDGE.address:
            raise LedgerError(f"proposer {block.header.proposer[:8]} is not a validator")

    err = _fails(_rows(VALID), on_block=only_edge_may_propose)
    assert str(err) == f"block 0: proposer {MINER.address[:8]} is not a validator"


def test_first_failure_wins() -> None:
    rows = _rows(VALID)
    rows[1] = (1, "00" * 32, rows[1][2])
    rows[4] = (4, "00" * 32, rows[4][2])
    assert _fails(rows).height == 1
