"""Proof of work: difficulty test, nonce search, and block sealing.

Owns the PoW rule (the header hash has at least ``difficulty`` leading zero bits)
and the miner.  The miner searches nonces 0, 1, 2, ... so the same header always
gets the same nonce.  For speed it hashes ``prefix + str(nonce) + suffix`` where
prefix/suffix are the canonical header JSON around the nonce value, starting from
a precomputed SHA-256 state of the prefix; the result equals ``header_hash`` exactly
(it is re-checked once at the end).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable

from bmoe.ledger.blocks import (
    MAX_DIFFICULTY,
    MAX_UINT63,
    Block,
    BlockHeader,
    header_error,
    header_hash,
    header_to_dict,
)
from bmoe.ledger.encoding import canonical_json, is_hex64
from bmoe.ledger.errors import InvalidBlock
from bmoe.ledger.keys import Identity
from bmoe.ledger.merkle import merkle_root
from bmoe.ledger.transactions import Transaction, tx_hash

_NONCE_MARKER = b'"nonce":0,'


def _target(difficulty_bits: int) -> bytes | None:
    """Digests strictly below this 32-byte value meet the difficulty (None: every digest)."""
    if isinstance(difficulty_bits, bool) or not isinstance(difficulty_bits, int):
        raise TypeError(f"difficulty must be an int, got {type(difficulty_bits).__name__}")
    if not 0 <= difficulty_bits <= MAX_DIFFICULTY:
        raise ValueError(f"difficulty {difficulty_bits} out of range [0, {MAX_DIFFICULTY}]")
    if difficulty_bits == 0:
        return None
    return (1 << (256 - difficulty_bits)).to_bytes(32, "big")


def meets_difficulty(hash_hex: str, difficulty_bits: int) -> bool:
    """True iff ``hash_hex`` (64 lower-case hex chars) has >= ``difficulty_bits`` leading zero bits.

    A malformed hash gives False; an out-of-range difficulty raises ``ValueError``.
    """
    target = _target(difficulty_bits)
    if not is_hex64(hash_hex):
        return False
    return target is None or bytes.fromhex(hash_hex) < target


def _split_on_nonce(header: BlockHeader) -> tuple[bytes, bytes]:
    """Canonical header bytes before and after the nonce's decimal digits."""
    encoded = canonical_json(header_to_dict(dataclasses.replace(header, nonce=0)))
    if encoded.count(_NONCE_MARKER) != 1:  # cannot happen for a well-formed header; guard anyway
        raise InvalidBlock(header.height, "cannot locate the nonce in the canonical header")
    prefix, suffix = encoded.split(_NONCE_MARKER)
    return prefix + _NONCE_MARKER[:-2], b"," + suffix


def mine(header: BlockHeader, *, max_nonce: int = MAX_UINT63) -> BlockHeader:
    """Return ``header`` with the smallest nonce >= 0 meeting its difficulty.

    The incoming nonce is ignored.  Raises :class:`InvalidBlock` if the header is
    malformed or no nonce <= ``max_nonce`` works.
    """
    reason = header_error(header)
    if reason is not None:
        raise InvalidBlock(header.height if isinstance(header.height, int) else None, f"header: {reason}")
    target = _target(header.difficulty)
    if target is None:
        return dataclasses.replace(header, nonce=0)
    prefix, suffix = _split_on_nonce(header)
    base = hashlib.sha256(prefix)
    nonce = 0
    while nonce <= max_nonce:
        h = base.copy()
        h.update(b"%d%b" % (nonce, suffix))
        if h.digest() < target:
            break
        nonce += 1
    else:
        raise InvalidBlock(header.height, f"no nonce <= {max_nonce} meets difficulty {header.difficulty}")
    mined = dataclasses.replace(header, nonce=nonce)
    if not meets_difficulty(header_hash(mined), mined.difficulty):  # fast path must agree with header_hash
        raise AssertionError("PoW fast path disagrees with header_hash")
    return mined


def seal_block(
    identity: Identity,
    height: int,
    prev_hash: str,
    transactions: Iterable[Transaction],
    timestamp: int,
    difficulty: int,
    state_root: str = "",
) -> Block:
    """Build, mine and sign a block proposed by ``identity``.

    Computes the Merkle root of the transaction hashes (in the given order), mines
    the nonce, and signs the raw 32-byte header hash.  Transactions are not
    re-verified here.
    """
    txs = tuple(transactions)
    header = BlockHeader(
        height=height,
        prev_hash=prev_hash,
        merkle_root=merkle_root([tx_hash(tx) for tx in txs]),
        timestamp=timestamp,
        proposer=identity.address,
        consensus="pow",
        difficulty=difficulty,
        nonce=0,
        state_root=state_root,
    )
    mined = mine(header)
    return Block(
        header=mined,
        transactions=txs,
        proposer_signature=identity.sign(bytes.fromhex(header_hash(mined))),
    )
