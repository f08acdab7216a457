"""PoW blocks: the header, its hash and work, nonce search, signatures, and the wire format.

Owns what a single block is and how to check it on its own: a header ``(height, prev, payload_hash,
miner, nonce, difficulty, evidence)`` hashed as canonical JSON with SHA-256, valid when that hash
has at least ``difficulty`` leading zero bits (work ``2**difficulty``) and when the miner's Ed25519
signature over ``DOMAIN + hash`` verifies. ``evidence`` lists hashes of invalid blocks the block
reports (reputation-aided mining); the message carries those blocks beside it.

Messages: ``{"kind": "block", "header", "sig", "payload" (base64), "evidence": [block, ...]}`` and
``{"kind": "get", "hash"}`` (ask a peer for a block, to fill a gap).

Must not know: chains, fork choice, reputation arithmetic (``miner`` and ``reputation``), or what
a payload means.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from bmoe.consensus.engine import Reason, Rejected
from bmoe.consensus.wire import (
    decode_message,
    encode_payload,
    expect_hex64,
    expect_list,
    expect_literal,
    expect_name,
    expect_object,
    expect_payload,
    expect_sig,
    expect_uint,
    malformed,
)
from bmoe.ledger.encoding import canonical_json, is_hex64, sha256_hex
from bmoe.ledger.keys import Identity, verify_signature

DOMAIN = b"bmoe-pow-v1\x00"
MAX_DIFFICULTY = 64  # far beyond anything simulated; bounds the work arithmetic
MAX_EVIDENCE = 16
_NONCE_MARKER = b'"nonce":0,'


@dataclass(frozen=True)
class Header:
    height: int
    prev: str
    payload_hash: str
    miner: str
    nonce: int
    difficulty: int
    evidence: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "prev": self.prev, "payload_hash": self.payload_hash, "miner": self.miner,
                "nonce": self.nonce, "difficulty": self.difficulty, "evidence": list(self.evidence)}


def header_hash(header: Header) -> str:
    return sha256_hex(canonical_json(header.to_json()))


def meets_difficulty(hash_hex: str, difficulty: int) -> bool:
    """``hash_hex`` has at least ``difficulty`` leading zero bits."""
    return difficulty <= 0 or int(hash_hex, 16) >> (256 - difficulty) == 0


def work(difficulty: int) -> int:
    """Expected hash attempts behind a block of this difficulty: the unit of fork choice."""
    return 1 << difficulty


@dataclass(frozen=True)
class Block:
    header: Header
    sig: str
    payload: bytes = field(repr=False)
    evidence: tuple[Block, ...] = ()  # the invalid blocks named in header.evidence (their own evidence dropped)

    @cached_property
    def hash(self) -> str:
        return header_hash(self.header)


class NonceSearch:
    """Tries nonces 0, 1, 2, ... for one header, a budget at a time (a miner's work between ticks).

    Hashes ``prefix + str(nonce) + suffix`` from a SHA-256 state precomputed over the prefix; the
    result equals ``header_hash`` of the header with that nonce.
    """

    def __init__(self, header: Header) -> None:
        encoded = canonical_json({**header.to_json(), "nonce": 0})
        if encoded.count(_NONCE_MARKER) != 1:
            raise ValueError("cannot locate the nonce in the canonical header")
        prefix, suffix = encoded.split(_NONCE_MARKER)
        self.header = header
        self._base = hashlib.sha256(prefix + _NONCE_MARKER[:-2])
        self._suffix = b"," + suffix
        self._shift = 256 - header.difficulty
        self.next_nonce = 0

    def attempt(self, budget: int) -> tuple[Header | None, int]:
        """Spend up to ``budget`` attempts: (the solved header or None, attempts used)."""
        base, suffix, shift = self._base, self._suffix, self._shift
        for used in range(1, budget + 1):
            nonce = self.next_nonce
            self.next_nonce += 1
            h = base.copy()
            h.update(b"%d%b" % (nonce, suffix))
            if int.from_bytes(h.digest(), "big") >> shift == 0:
                solved = dataclasses.replace(self.header, nonce=nonce)
                assert meets_difficulty(header_hash(solved), solved.difficulty)
                return solved, used
        return None, budget


def sign_block(identity: Identity, header: Header, payload: bytes, evidence: tuple[Block, ...] = ()) -> Block:
    block = Block(header, "", payload, evidence)
    return Block(header, identity.sign(DOMAIN + bytes.fromhex(block.hash)), payload, evidence)


# ---------------------------------------------------------------------------------------------
# Wire format


@dataclass(frozen=True)
class GetBlock:
    hash: str


def _block_json(block: Block, with_evidence: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {"header": block.header.to_json(), "sig": block.sig, "payload": encode_payload(block.payload)}
    if with_evidence:
        obj["kind"] = "block"
        obj["evidence"] = [_block_json(e, with_evidence=False) for e in block.evidence]
    return obj


def encode_block(block: Block) -> bytes:
    return canonical_json(_block_json(block, with_evidence=True))


def encode_get(block_hash: str) -> bytes:
    return canonical_json({"kind": "get", "hash": block_hash})


def _parse_header(value: Any, where: str) -> Header:
    obj = expect_object(value, {"height", "prev", "payload_hash", "miner", "nonce", "difficulty", "evidence"}, where)
    evidence = tuple(expect_hex64(e, f"{where}.evidence[{i}]")
                     for i, e in enumerate(expect_list(obj["evidence"], f"{where}.evidence", MAX_EVIDENCE)))
    difficulty = expect_uint(obj["difficulty"], f"{where}.difficulty")
    if difficulty > MAX_DIFFICULTY:
        raise malformed(f"{where}.difficulty", f"above {MAX_DIFFICULTY}")
    return Header(
        height=expect_uint(obj["height"], f"{where}.height", minimum=1),
        prev=expect_hex64(obj["prev"], f"{where}.prev"),
        payload_hash=expect_hex64(obj["payload_hash"], f"{where}.payload_hash"),
        miner=expect_name(obj["miner"], f"{where}.miner"),
        nonce=expect_uint(obj["nonce"], f"{where}.nonce"),
        difficulty=difficulty,
        evidence=evidence,
    )


def _parse_block(value: Any, where: str, nested: bool) -> Block:
    keys = {"header", "sig", "payload"} if nested else {"kind", "header", "sig", "payload", "evidence"}
    obj = expect_object(value, keys, where)
    evidence: tuple[Block, ...] = ()
    if not nested:
        evidence = tuple(_parse_block(e, f"{where}.evidence[{i}]", nested=True)
                         for i, e in enumerate(expect_list(obj["evidence"], f"{where}.evidence", MAX_EVIDENCE)))
    return Block(_parse_header(obj["header"], f"{where}.header"), expect_sig(obj["sig"], f"{where}.sig"),
                 expect_payload(obj["payload"], f"{where}.payload"), evidence)


def parse_message(message: object, limit: int) -> Block | GetBlock:
    """Bytes → a block or a get request (syntax only), or ``Rejected(oversized | malformed)``."""
    obj = decode_message(message, limit)
    kind = expect_literal(obj.get("kind"), ("block", "get"), "kind")
    if kind == "get":
        expect_object(obj, {"kind", "hash"}, "get")
        return GetBlock(expect_hex64(obj["hash"], "hash"))
    return _parse_block(obj, "block", nested=False)


def check_block(block: Block, miners: Mapping[str, str]) -> None:
    """Checks a block passes on its own: known miner, signature, payload digest, proof of work."""
    address = miners.get(block.header.miner)
    if address is None:
        raise Rejected(Reason.UNKNOWN_SENDER, f"miner {block.header.miner!r} is not enrolled")
    if not verify_signature(address, DOMAIN + bytes.fromhex(block.hash), block.sig):
        raise Rejected(Reason.BAD_SIGNATURE, f"block {block.hash[:12]} by {block.header.miner}")
    if sha256_hex(block.payload) != block.header.payload_hash:
        raise Rejected(Reason.BAD_DIGEST, f"block {block.hash[:12]}: payload does not match payload_hash")
    if not meets_difficulty(block.hash, block.header.difficulty):
        raise Rejected(Reason.INSUFFICIENT_WORK, f"block {block.hash[:12]} misses difficulty {block.header.difficulty}")
    if tuple(e.hash for e in block.evidence) != block.header.evidence:
        raise Rejected(Reason.MALFORMED, "evidence blocks do not match the header's evidence hashes")


def block_proof(block: Block, chain_work: int, work_on_top: int) -> dict[str, Any]:
    """``Committed.proof`` of a PoW block: header, signature, its work, the chain's work up to it, and the
    work built on top of it when it was reported final."""
    return {"hash": block.hash, "header": block.header.to_json(), "signature": block.sig,
            "work": work(block.header.difficulty), "chain_work": chain_work, "work_on_top": work_on_top}


def verify_block_proof(proof: Any, miners: Mapping[str, str]) -> str | None:
    """Check a PoW ``Committed.proof`` on its own: hash, work and signature. ``None`` if valid.

    Which difficulty the chain required (reputation-aided mining) and the depth need the chain.
    """
    if not isinstance(proof, dict) or not {"hash", "header", "signature", "work"} <= set(proof):
        return "proof must have hash, header, signature, work"
    try:
        header = _parse_header(proof["header"], "header")
    except Rejected as rejection:
        return rejection.detail
    digest = header_hash(header)
    if proof["hash"] != digest or not is_hex64(proof["hash"]):
        return "hash does not match the header"
    if not meets_difficulty(digest, header.difficulty):
        return "the hash does not meet the header's difficulty"
    if proof["work"] != work(header.difficulty):
        return "work is not 2**difficulty"
    address = miners.get(header.miner)
    if address is None:
        return f"miner {header.miner!r} is not enrolled"
    if not verify_signature(address, DOMAIN + bytes.fromhex(digest), proof["signature"]):
        return "bad miner signature"
    return None
