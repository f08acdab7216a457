"""Proof of work: the difficulty rule, the miner's fast path, block sealing."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from bmoe.ledger.blocks import GENESIS_PREV_HASH, BlockHeader, block_to_bytes, header_hash
from bmoe.ledger.errors import InvalidBlock
from bmoe.ledger.keys import derive_identity, verify_signature
from bmoe.ledger.merkle import merkle_root
from bmoe.ledger.pow import _split_on_nonce, meets_difficulty, mine, seal_block
from bmoe.ledger.transactions import sign_transaction, tx_hash

MINER = derive_identity(5, "miner")


def _header(difficulty: int = 10, **changes: object) -> BlockHeader:
    header = BlockHeader(
        height=3,
        prev_hash="ab" * 32,
        merkle_root=hashlib.sha256(b"").hexdigest(),
        timestamp=1234,
        proposer=MINER.address,
        consensus="pow",
        difficulty=difficulty,
        nonce=0,
        state_root="",
    )
    return dataclasses.replace(header, **changes)  # type: ignore[arg-type]


def _leading_zero_bits(hash_hex: str) -> int:
    return 256 - int(hash_hex, 16).bit_length()


@pytest.mark.parametrize(
    ("hash_hex", "zero_bits"),
    [
        ("0" * 64, 256),
        ("00ff" + "f" * 60, 8),
        ("01" + "f" * 62, 7),
        ("0f" + "f" * 62, 4),
        ("10" + "0" * 62, 3),
        ("80" + "0" * 62, 0),
        ("0000" + "1" + "0" * 59, 19),
    ],
)
def test_meets_difficulty_vectors(hash_hex: str, zero_bits: int) -> None:
    assert _leading_zero_bits(hash_hex) == zero_bits
    assert meets_difficulty(hash_hex, zero_bits)
    assert meets_difficulty(hash_hex, 0)
    if zero_bits < 256:
        assert not meets_difficulty(hash_hex, zero_bits + 1)


@pytest.mark.parametrize("bad", ["", "0" * 63, "G" * 64, "0" * 65, None])
def test_meets_difficulty_rejects_malformed_hash(bad: object) -> None:
    assert meets_difficulty(bad, 0) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", [-1, 257, True, 1.0])
def test_meets_difficulty_rejects_bad_difficulty(bits: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        meets_difficulty("0" * 64, bits)  # type: ignore[arg-type]


def test_mined_header_meets_difficulty_with_smallest_nonce() -> None:
    mined = mine(_header(10))
    digest = header_hash(mined)
    assert meets_difficulty(digest, 10)
    assert _leading_zero_bits(digest) >= 10
    for nonce in range(mined.nonce):
        assert not meets_difficulty(header_hash(dataclasses.replace(mined, nonce=nonce)), 10)


def test_mining_is_deterministic_and_ignores_incoming_nonce() -> None:
    first = mine(_header(12))
    assert mine(_header(12)) == first
    assert mine(_header(12, nonce=first.nonce + 17)) == first


def test_difficulty_zero_gives_nonce_zero() -> None:
    assert mine(_header(0, nonce=99)).nonce == 0


@pytest.mark.parametrize(
    "header",
    [
        _header(),
        _header(state_root="cd" * 32, height=0, prev_hash=GENESIS_PREV_HASH),
        _header(state_root="abc", timestamp=2**63 - 1, height=10**12),
    ],
)
def test_fast_path_hash_equals_header_hash(header: BlockHeader) -> None:
    prefix, suffix = _split_on_nonce(header)
    for nonce in [0, 1, 9, 10, 12345, 2**40 + 3, 2**63 - 1]:
        fast = hashlib.sha256(prefix + str(nonce).encode() + suffix).hexdigest()
        assert fast == header_hash(dataclasses.replace(header, nonce=nonce))


def test_mine_gives_up_after_max_nonce() -> None:
    with pytest.raises(InvalidBlock, match="no nonce <= 3 meets difficulty 40"):
        mine(_header(40), max_nonce=3)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"difficulty": 257}, "difficulty"),
        ({"consensus": "pos"}, "consensus"),
        ({"prev_hash": "x"}, "prev_hash"),
        ({"nonce": -1}, "nonce"),
    ],
)
def test_mine_rejects_malformed_header(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidBlock, match=reason):
        mine(dataclasses.replace(_header(4), **changes))  # type: ignore[arg-type]


def test_seal_block() -> None:
    txs = [sign_transaction(MINER, "task", {"i": i}, i) for i in range(3)]
    block = seal_block(MINER, 0, GENESIS_PREV_HASH, txs, timestamp=7, difficulty=8, state_root="ee" * 32)
    header = block.header
    assert block.transactions == tuple(txs)
    assert header.merkle_root == merkle_root([tx_hash(tx) for tx in txs])
    assert header.proposer == MINER.address
    assert header.consensus == "pow"
    assert header.state_root == "ee" * 32
    assert (header.height, header.prev_hash) == (0, GENESIS_PREV_HASH)
    assert (header.timestamp, header.difficulty) == (7, 8)
    assert meets_difficulty(header_hash(header), 8)
    assert verify_signature(MINER.address, bytes.fromhex(header_hash(header)), block.proposer_signature)
    again = seal_block(MINER, 0, GENESIS_PREV_HASH, txs, timestamp=7, difficulty=8, state_root="ee" * 32)
    assert block_to_bytes(again) == block_to_bytes(block)
