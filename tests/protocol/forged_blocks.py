"""What a Byzantine PBFT primary forges in the block it proposes, and the reason honest replicas must name.

Shared by the simulator's test (``test_pbft_forged_proposals.py``) and the deployment's
(``tests/net/test_net_pbft_forged.py``): each forgery takes the honest proposal's bytes and returns the
forged block's bytes, re-signed by the Byzantine primary so that only the forgery is wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bmoe.ledger.blocks import Block, block_from_bytes, header_hash, proposal_bytes
from bmoe.ledger.keys import Identity, derive_identity
from bmoe.ledger.merkle import merkle_root
from bmoe.ledger.transactions import Transaction, sign_transaction, tx_hash

OUTSIDER = derive_identity(b"an outsider to every run", "outsider")  # enrolled nowhere

Forgery = Callable[[bytes, Identity], bytes]  # (honest proposal bytes, the primary) -> forged proposal bytes


def resealed(block: Block, signer: Identity, transactions: tuple[Transaction, ...] | None = None,
             merkle: str | None = None) -> bytes:
    """``block`` with ``transactions`` (and their Merkle root, or ``merkle``), signed by ``signer`` as proposer."""
    txs = block.transactions if transactions is None else transactions
    root = merkle if merkle is not None else merkle_root([tx_hash(tx) for tx in txs])
    header = dataclasses.replace(block.header, merkle_root=root, proposer=signer.address)
    return proposal_bytes(Block(header, txs, signer.sign(bytes.fromhex(header_hash(header)))))


def _edge_commitment(block: Block) -> int:
    """The index of the block's last commitment (an edge's signed result)."""
    return max(i for i, tx in enumerate(block.transactions) if tx.kind == "commitment")


def _replace_commitment(payload: bytes, primary: Identity, make: Callable[[Transaction], Transaction]) -> bytes:
    block = block_from_bytes(payload)
    txs = list(block.transactions)
    index = _edge_commitment(block)
    txs[index] = make(txs[index])
    return resealed(block, primary, tuple(txs))


def zeroed_signature(payload: bytes, primary: Identity) -> bytes:
    return _replace_commitment(payload, primary, lambda tx: dataclasses.replace(tx, signature="00" * 64))


def foreign_signature(payload: bytes, primary: Identity) -> bytes:
    """An edge's commitment signed by the primary's key: what framing an edge would need."""
    return _replace_commitment(payload, primary, lambda tx: dataclasses.replace(
        tx, signature=sign_transaction(primary, tx.kind, tx.payload, tx.nonce).signature))


def wrong_merkle_root(payload: bytes, primary: Identity) -> bytes:
    return resealed(block_from_bytes(payload), primary, merkle="ab" * 32)


def unenrolled_sender(payload: bytes, primary: Identity) -> bytes:
    """An edge's commitment, validly signed by a key the genesis does not enrol."""
    return _replace_commitment(payload, primary, lambda tx: sign_transaction(OUTSIDER, tx.kind, tx.payload, 0))


def resigned_by_outsider(payload: bytes, primary: Identity) -> bytes:
    """The honest block, unchanged but for its proposer: a key that is not a validator."""
    return resealed(block_from_bytes(payload), OUTSIDER)


FORGERIES: dict[str, tuple[Forgery, str]] = {  # name -> (forgery, what the refusal must say)
    "zeroed transaction signature": (zeroed_signature, "bad signature"),
    "foreign transaction signature": (foreign_signature, "bad signature"),
    "wrong Merkle root": (wrong_merkle_root, "merkle_root"),
    "transaction from an unenrolled key": (unenrolled_sender, "sender is not an enrolled edge"),
    "re-signed by a non-validator": (resigned_by_outsider, "is not a validator enrolled in the genesis"),
}
