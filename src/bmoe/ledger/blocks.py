"""Blocks and block headers.

Owns the block data types, the header hash (the block's identity), and the strict
byte encoding of a block (canonical JSON; exactly one accepted encoding per block).
Consensus rules that need more than one block live in ``chain_check``; PoW in ``pow``.

The proposer signs the 32 raw bytes of the header hash (``bytes.fromhex(header_hash)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bmoe.ledger.encoding import canonical_json, decode_canonical_json, is_hex64, sha256_hex
from bmoe.ledger.errors import InvalidBlock, InvalidTransaction
from bmoe.ledger.keys import is_address, is_signature_hex
from bmoe.ledger.transactions import Transaction, tx_from_dict, tx_json, tx_to_dict

GENESIS_PREV_HASH = "0" * 64
CONSENSUS_KINDS: tuple[str, ...] = ("pow", "pbft", "ethereum")  # the engines of ledger/sealing
MAX_DIFFICULTY = 256
MAX_UINT63 = 2**63 - 1
MAX_STATE_ROOT_CHARS = 256

HEADER_FIELDS: tuple[str, ...] = (
    "height",
    "prev_hash",
    "merkle_root",
    "timestamp",
    "proposer",
    "consensus",
    "difficulty",
    "nonce",
    "state_root",
)
BLOCK_FIELDS: frozenset[str] = frozenset({"header", "transactions", "proposer_signature"})
CERTIFIED_BLOCK_FIELDS: frozenset[str] = BLOCK_FIELDS | {"certificate"}  # PBFT, Ethereum: + where it was sealed

_STATE_ROOT = re.compile(r"[0-9a-f]*")


@dataclass(frozen=True)
class BlockHeader:
    """A block header.

    ``timestamp`` is logical and supplied by the caller (deterministic runs give the
    same head hash); ``difficulty`` is the number of leading zero bits the header
    hash must have; ``state_root`` is an opaque lower-case hex string ("" allowed).
    """

    height: int
    prev_hash: str
    merkle_root: str
    timestamp: int
    proposer: str
    consensus: str
    difficulty: int
    nonce: int
    state_root: str


@dataclass(frozen=True)
class Block:
    """A header, its transactions, and the proposer's signature over the header hash.

    PBFT blocks also carry ``certificate``: the 2f + 1 commit signatures over the hash of the block's
    bytes *without* the certificate (:func:`proposal_bytes`); it is not part of the header hash.
    """

    header: BlockHeader
    transactions: tuple[Transaction, ...]
    proposer_signature: str
    certificate: dict[str, Any] | None = None


def header_to_dict(header: BlockHeader) -> dict[str, Any]:
    """Wire form of ``header``."""
    return {name: getattr(header, name) for name in HEADER_FIELDS}


def header_hash(header: BlockHeader) -> str:
    """SHA-256 hex of the canonical JSON of the header: the block's identity."""
    return sha256_hex(canonical_json(header_to_dict(header)))


def block_hash(block: Block) -> str:
    """The hash of ``block`` (its header hash)."""
    return header_hash(block.header)


def _is_uint63(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_UINT63


def header_error(header: BlockHeader) -> str | None:
    """Reason ``header`` is malformed, or None.  Checks types and ranges only."""
    checks: tuple[tuple[bool, str], ...] = (
        (_is_uint63(header.height), "height must be an int in [0, 2**63-1]"),
        (is_hex64(header.prev_hash), "prev_hash must be a 64-char lower-case hex digest"),
        (is_hex64(header.merkle_root), "merkle_root must be a 64-char lower-case hex digest"),
        (_is_uint63(header.timestamp), "timestamp must be an int in [0, 2**63-1]"),
        (is_address(header.proposer), "proposer must be a 64-char lower-case hex address"),
        (
            isinstance(header.consensus, str) and header.consensus in CONSENSUS_KINDS,
            f"consensus must be one of {CONSENSUS_KINDS}, got {header.consensus!r}",
        ),
        (
            _is_uint63(header.difficulty) and header.difficulty <= MAX_DIFFICULTY,
            f"difficulty must be an int in [0, {MAX_DIFFICULTY}]",
        ),
        (_is_uint63(header.nonce), "nonce must be an int in [0, 2**63-1]"),
        (
            isinstance(header.state_root, str)
            and len(header.state_root) <= MAX_STATE_ROOT_CHARS
            and _STATE_ROOT.fullmatch(header.state_root) is not None,
            f"state_root must be lower-case hex of at most {MAX_STATE_ROOT_CHARS} chars",
        ),
    )
    for ok, reason in checks:
        if not ok:
            return reason
    return None


def _height_hint(header: object) -> int | None:
    height = header.get("height") if isinstance(header, dict) else getattr(header, "height", None)
    return height if _is_uint63(height) else None


def header_from_dict(data: object) -> BlockHeader:
    """Strictly parse a header's wire form; raises :class:`InvalidBlock`."""
    if not isinstance(data, dict):
        raise InvalidBlock(None, f"header must be a JSON object, got {type(data).__name__}")
    height = _height_hint(data)
    if set(data) != set(HEADER_FIELDS):
        missing = sorted(set(HEADER_FIELDS) - set(data))
        extra = sorted(str(k) for k in set(data) - set(HEADER_FIELDS))
        raise InvalidBlock(height, f"header fields: missing {missing}, unexpected {extra}")
    header = BlockHeader(**data)
    reason = header_error(header)
    if reason is not None:
        raise InvalidBlock(height, f"header: {reason}")
    return header


def block_to_dict(block: Block) -> dict[str, Any]:
    """Wire form of ``block`` (the ``certificate`` key only when there is one)."""
    wire: dict[str, Any] = {
        "header": header_to_dict(block.header),
        "transactions": [tx_to_dict(tx) for tx in block.transactions],
        "proposer_signature": block.proposer_signature,
    }
    if block.certificate is not None:
        wire["certificate"] = block.certificate
    return wire


def proposal_bytes(block: Block) -> bytes:
    """What a PBFT commit certificate certifies: the block's canonical bytes without the certificate."""
    assembled = _assembled(block, certified=False)
    if assembled is not None:
        return assembled
    return canonical_json({k: v for k, v in block_to_dict(block).items() if k != "certificate"})


def block_to_bytes(block: Block) -> bytes:
    """Canonical JSON bytes of ``block``."""
    assembled = _assembled(block, certified=True)
    return assembled if assembled is not None else canonical_json(block_to_dict(block))


def _assembled(block: Block, certified: bool) -> bytes | None:
    """The canonical JSON of ``block`` (with its certificate when ``certified``) assembled from its parts' (the keys
    in sorted order: certificate, header, proposer_signature, transactions), each transaction's encoded once
    (``tx_json``); None when a part cannot be encoded, for the whole's encoding to say why."""
    try:
        parts = [b"{"]
        if certified and block.certificate is not None:
            parts += [b'"certificate":', canonical_json(block.certificate), b","]
        parts += [b'"header":', canonical_json(header_to_dict(block.header)), b',"proposer_signature":',
                  canonical_json(block.proposer_signature), b',"transactions":[',
                  b",".join(tx_json(tx) for tx in block.transactions), b"]}"]
    except (AttributeError, TypeError, ValueError, RecursionError):
        return None
    return b"".join(parts)


def block_from_dict(data: object) -> Block:
    """Strictly parse a block's wire form; raises :class:`InvalidBlock`.

    Signatures, Merkle root and PoW are *not* verified here (see ``chain_check``).
    """
    if not isinstance(data, dict):
        raise InvalidBlock(None, f"block must be a JSON object, got {type(data).__name__}")
    height = _height_hint(data.get("header"))
    if set(data) not in (BLOCK_FIELDS, CERTIFIED_BLOCK_FIELDS):
        missing = sorted(BLOCK_FIELDS - set(data))
        extra = sorted(str(k) for k in set(data) - CERTIFIED_BLOCK_FIELDS)
        raise InvalidBlock(height, f"block fields: missing {missing}, unexpected {extra}")
    certificate = data.get("certificate")
    if "certificate" in data and not isinstance(certificate, dict):
        raise InvalidBlock(height, "certificate must be a JSON object")
    header = header_from_dict(data["header"])
    raw_txs = data["transactions"]
    if not isinstance(raw_txs, list):
        raise InvalidBlock(height, f"transactions must be a list, got {type(raw_txs).__name__}")
    txs: list[Transaction] = []
    for i, raw in enumerate(raw_txs):
        try:
            txs.append(tx_from_dict(raw))
        except InvalidTransaction as exc:
            raise InvalidBlock(height, f"transaction {i}: {exc.reason}") from None
    if not is_signature_hex(data["proposer_signature"]):
        raise InvalidBlock(height, "proposer_signature must be 128 lower-case hex chars")
    return Block(header=header, transactions=tuple(txs), proposer_signature=data["proposer_signature"],
                 certificate=certificate)


def block_from_bytes(data: bytes) -> Block:
    """Strictly parse bytes produced by :func:`block_to_bytes`; raises :class:`InvalidBlock`.

    Rejects anything that is not exactly the canonical encoding of a well-formed block.
    """
    try:
        obj = decode_canonical_json(data)
    except ValueError as exc:
        raise InvalidBlock(None, f"bad encoding: {exc}") from None
    return block_from_dict(obj)


def block_error(block: Block) -> str | None:
    """Reason an in-memory ``block`` is malformed (as :func:`block_from_bytes` would say), or None."""
    try:
        block_from_dict(decode_canonical_json(block_to_bytes(block)))
    except InvalidBlock as exc:
        return exc.reason
    except (AttributeError, TypeError, ValueError) as exc:
        return f"cannot encode: {exc}"
    return None
