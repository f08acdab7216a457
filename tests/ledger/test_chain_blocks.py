"""Blocks: header hash, byte round trip, strict parsing."""

from __future__ import annotations

import hashlib
import json

import pytest

from bmoe.ledger.blocks import (
    GENESIS_PREV_HASH,
    Block,
    block_from_bytes,
    block_hash,
    block_to_bytes,
    header_hash,
)
from bmoe.ledger.encoding import canonical_json
from bmoe.ledger.errors import InvalidBlock
from bmoe.ledger.keys import derive_identity
from bmoe.ledger.pow import seal_block
from bmoe.ledger.transactions import sign_transaction

MINER = derive_identity(5, "miner")


def _block(n_txs: int = 2, height: int = 4) -> Block:
    txs = [sign_transaction(MINER, "activation", {"i": i, "x": [0.5, -1.25]}, i) for i in range(n_txs)]
    return seal_block(MINER, height, "cd" * 32, txs, timestamp=99, difficulty=4, state_root="ab" * 32)


def test_genesis_prev_hash() -> None:
    assert GENESIS_PREV_HASH == "0" * 64


def test_header_hash_is_sha256_of_canonical_header() -> None:
    header = _block().header
    fields = {
        "height": header.height,
        "prev_hash": header.prev_hash,
        "merkle_root": header.merkle_root,
        "timestamp": header.timestamp,
        "proposer": header.proposer,
        "consensus": header.consensus,
        "difficulty": header.difficulty,
        "nonce": header.nonce,
        "state_root": header.state_root,
    }
    assert header_hash(header) == hashlib.sha256(canonical_json(fields)).hexdigest()
    assert block_hash(_block()) == header_hash(header)


@pytest.mark.parametrize("n_txs", [0, 1, 5])
def test_bytes_round_trip(n_txs: int) -> None:
    block = _block(n_txs)
    data = block_to_bytes(block)
    parsed = block_from_bytes(data)
    assert parsed == block
    assert block_to_bytes(parsed) == data
    assert block_hash(parsed) == block_hash(block)


def _wire() -> dict:
    return json.loads(block_to_bytes(_block()))


def _mutate(path: tuple[object, ...], value: object, *, delete: bool = False) -> bytes:
    wire = _wire()
    target = wire
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return canonical_json(wire)


@pytest.mark.parametrize(
    ("data", "height", "reason"),
    [
        (b"", None, "bad encoding"),
        (b"[]", None, "block must be a JSON object"),
        (b"\xff", None, "not ASCII"),
        (block_to_bytes(_block()).replace(b",", b", ", 1), None, "not in canonical JSON form"),
        (block_to_bytes(_block()) + b"\n", None, "bad encoding"),
        (_mutate(("extra",), 1), 4, "unexpected ['extra']"),
        (_mutate(("proposer_signature",), None, delete=True), 4, "missing ['proposer_signature']"),
        (_mutate(("proposer_signature",), "00"), 4, "proposer_signature must be"),
        (_mutate(("transactions",), {}), 4, "transactions must be a list"),
        (_mutate(("transactions", 1, "kind"), "mint"), 4, "transaction 1: unknown kind 'mint'"),
        (_mutate(("transactions", 0, "nonce"), None, delete=True), 4, "transaction 0: fields: missing nonce"),
        (_mutate(("header",), []), None, "header must be a JSON object"),
        (_mutate(("header", "extra"), 0), 4, "header fields"),
        (_mutate(("header", "nonce"), None, delete=True), 4, "header fields"),
        (_mutate(("header", "height"), -1), None, "height must be"),
        (_mutate(("header", "height"), "4"), None, "height must be"),
        (_mutate(("header", "prev_hash"), "CD" * 32), 4, "prev_hash must be"),
        (_mutate(("header", "merkle_root"), ""), 4, "merkle_root must be"),
        (_mutate(("header", "timestamp"), 1.5), 4, "timestamp must be"),
        (_mutate(("header", "proposer"), "ab"), 4, "proposer must be"),
        (_mutate(("header", "consensus"), "pos"), 4, "consensus must be"),
        (_mutate(("header", "difficulty"), 257), 4, "difficulty must be"),
        (_mutate(("header", "difficulty"), True), 4, "difficulty must be"),
        (_mutate(("header", "nonce"), -3), 4, "nonce must be"),
        (_mutate(("header", "state_root"), "xyz"), 4, "state_root must be"),
        (_mutate(("header", "state_root"), None), 4, "state_root must be"),
    ],
)
def test_block_from_bytes_is_strict(data: bytes, height: int | None, reason: str) -> None:
    with pytest.raises(InvalidBlock) as info:
        block_from_bytes(data)
    assert reason in str(info.value)
    assert info.value.height == height


def test_invalid_block_str() -> None:
    assert str(InvalidBlock(7, "bad thing")) == "invalid block 7: bad thing"
    assert str(InvalidBlock(None, "bad thing")) == "invalid block: bad thing"


def test_empty_state_root_allowed() -> None:
    txs = [sign_transaction(MINER, "task", {}, 0)]
    block = seal_block(MINER, 0, GENESIS_PREV_HASH, txs, timestamp=0, difficulty=0)
    assert block.header.state_root == ""
    assert block_from_bytes(block_to_bytes(block)) == block


def test_deeply_nested_block_is_rejected_cleanly() -> None:
    data = b'{"header":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidBlock, match="bad encoding"):
        block_from_bytes(data)
