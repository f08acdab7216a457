"""Merkle roots (RFC 6962 style) and inclusion proofs."""

from __future__ import annotations

import hashlib

import pytest

from bmoe.ledger.merkle import ProofStep, merkle_proof, merkle_root, verify_merkle_proof


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _leaf(i: int) -> str:
    return hashlib.sha256(f"tx{i}".encode()).hexdigest()


LEAVES = [_leaf(i) for i in range(9)]


def _L(hex_: str) -> bytes:
    return _h(b"\x00" + bytes.fromhex(hex_))


def _N(left: bytes, right: bytes) -> bytes:
    return _h(b"\x01" + left + right)


def _rfc6962(leaves: list[str]) -> bytes:
    """Reference MTH from RFC 6962 §2.1: split at the largest power of two below n."""
    if len(leaves) == 1:
        return _L(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return _N(_rfc6962(leaves[:k]), _rfc6962(leaves[k:]))


def test_empty_root() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()


def test_single_leaf_is_hashed_with_leaf_prefix() -> None:
    a = LEAVES[0]
    assert merkle_root([a]) == _L(a).hex()
    assert merkle_root([a]) != a


def test_hand_vectors() -> None:
    a, b, c, d, e = LEAVES[:5]
    assert merkle_root([a, b]) == _N(_L(a), _L(b)).hex()
    assert merkle_root([a, b, c]) == _N(_N(_L(a), _L(b)), _L(c)).hex()
    assert merkle_root([a, b, c, d]) == _N(_N(_L(a), _L(b)), _N(_L(c), _L(d))).hex()
    ab_cd = _N(_N(_L(a), _L(b)), _N(_L(c), _L(d)))
    assert merkle_root([a, b, c, d, e]) == _N(ab_cd, _L(e)).hex()


@pytest.mark.parametrize("n", range(1, 18))
def test_equals_rfc6962_reference(n: int) -> None:
    leaves = [_leaf(i) for i in range(n)]
    assert merkle_root(leaves) == _rfc6962(leaves).hex()


def test_odd_node_is_promoted_not_duplicated() -> None:
    a, b, c = LEAVES[:3]
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])
    assert merkle_root([a, b]) != merkle_root([a, b, b])


def test_order_matters() -> None:
    a, b = LEAVES[:2]
    assert merkle_root([a, b]) != merkle_root([b, a])


def test_inner_node_cannot_pose_as_leaf() -> None:
    a, b, c, d = LEAVES[:4]
    ab, cd = _N(_L(a), _L(b)).hex(), _N(_L(c), _L(d)).hex()
    assert merkle_root([ab, cd]) != merkle_root([a, b, c, d])


@pytest.mark.parametrize("bad", [["xyz"], ["AB" * 32], [None]])
def test_rejects_malformed_leaves(bad: list[object]) -> None:
    with pytest.raises(ValueError, match="merkle leaf 0"):
        merkle_root(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", range(1, 12))
def test_every_proof_verifies(n: int) -> None:
    leaves = LEAVES[:n] + [_leaf(100 + i) for i in range(max(0, n - len(LEAVES)))]
    root = merkle_root(leaves)
    for i, leaf in enumerate(leaves):
        proof = merkle_proof(leaves, i)
        assert verify_merkle_proof(leaf, proof, root)
        other = leaves[(i + 1) % n]
        if other != leaf:
            assert not verify_merkle_proof(other, proof, root)


def test_proof_shape_for_promoted_leaf() -> None:
    a, b, c = LEAVES[:3]
    proof = merkle_proof([a, b, c], 2)
    assert proof == (ProofStep("left", _N(_L(a), _L(b)).hex()),)
    assert merkle_proof([a], 0) == ()


def test_tampered_proofs_fail() -> None:
    leaves = LEAVES[:7]
    root = merkle_root(leaves)
    proof = merkle_proof(leaves, 3)
    assert verify_merkle_proof(leaves[3], proof, root)
    flipped = tuple(ProofStep("right" if s.side == "left" else "left", s.hash) for s in proof)
    assert not verify_merkle_proof(leaves[3], flipped, root)
    assert not verify_merkle_proof(leaves[3], proof[:-1], root)
    assert not verify_merkle_proof(leaves[3], proof, merkle_root(leaves[:6]))


@pytest.mark.parametrize(
    ("leaf", "proof", "root"),
    [
        ("zz", (), "00" * 32),
        ("00" * 32, ("not a step",), "00" * 32),
        ("00" * 32, (ProofStep("up", "00" * 32),), "00" * 32),  # type: ignore[arg-type]
        ("00" * 32, (ProofStep("left", "xx"),), "00" * 32),
        ("00" * 32, None, "00" * 32),
    ],
)
def test_verify_never_raises(leaf: str, proof: object, root: str) -> None:
    assert verify_merkle_proof(leaf, proof, root) is False  # type: ignore[arg-type]


def test_proof_index_out_of_range() -> None:
    with pytest.raises(IndexError):
        merkle_proof(LEAVES[:3], 3)
