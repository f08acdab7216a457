"""Merkle trees over transaction hashes (RFC 6962 style).

Owns the Merkle root of a block's transaction hashes and inclusion proofs.

* leaf node  = sha256(0x00 || bytes.fromhex(leaf_hash))
* inner node = sha256(0x01 || left || right)
* an odd node at the end of a level is promoted unchanged to the next level (never
  duplicated, so ``[a, b, c]`` and ``[a, b, c, c]`` have different roots: the
  CVE-2012-2459 pitfall of Bitcoin's tree does not apply).  This equals RFC 6962's
  Merkle Tree Hash, which splits at the largest power of two below n.
* the empty tree's root is sha256(b"").

The 0x00/0x01 prefixes stop an inner node being passed off as a leaf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bmoe.ledger.encoding import is_hex64, sha256_hex

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


@dataclass(frozen=True)
class ProofStep:
    """One step of an inclusion proof: the sibling's hash and which side it is on."""

    side: Literal["left", "right"]
    hash: str


def _leaf(h: str) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + bytes.fromhex(h)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _check_leaves(leaf_hashes: Sequence[str]) -> None:
    for i, h in enumerate(leaf_hashes):
        if not is_hex64(h):
            raise ValueError(f"merkle leaf {i} is not a 64-char lower-case hex digest: {h!r}")


def _next_level(level: list[bytes]) -> list[bytes]:
    nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        nxt.append(level[-1])
    return nxt


def merkle_root(leaf_hashes: Sequence[str]) -> str:
    """Merkle root (hex) of ``leaf_hashes`` (each a 64-char lower-case hex digest)."""
    _check_leaves(leaf_hashes)
    if not leaf_hashes:
        return sha256_hex(b"")
    level = [_leaf(h) for h in leaf_hashes]
    while len(level) > 1:
        level = _next_level(level)
    return level[0].hex()


def merkle_proof(leaf_hashes: Sequence[str], index: int) -> tuple[ProofStep, ...]:
    """Inclusion proof for ``leaf_hashes[index]``, bottom-up.

    Levels where the node is promoted (no sibling) contribute no step.
    """
    _check_leaves(leaf_hashes)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(leaf_hashes):
        raise IndexError(f"merkle_proof: index {index!r} out of range for {len(leaf_hashes)} leaves")
    steps: list[ProofStep] = []
    level = [_leaf(h) for h in leaf_hashes]
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            side: Literal["left", "right"] = "left" if sibling < index else "right"
            steps.append(ProofStep(side=side, hash=level[sibling].hex()))
        level = _next_level(level)
        index //= 2
    return tuple(steps)


def verify_merkle_proof(leaf: str, proof: Sequence[ProofStep], root: str) -> bool:
    """True iff ``proof`` links ``leaf`` to ``root``.  Never raises on malformed input."""
    if not (is_hex64(leaf) and is_hex64(root)):
        return False
    try:
        node = _leaf(leaf)
        for step in proof:
            if not isinstance(step, ProofStep) or not is_hex64(step.hash):
                return False
            sibling = bytes.fromhex(step.hash)
            if step.side == "left":
                node = _node(sibling, node)
            elif step.side == "right":
                node = _node(node, sibling)
            else:
                return False
    except TypeError:
        return False
    return node.hex() == root
