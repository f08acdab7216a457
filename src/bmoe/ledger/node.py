"""A ledger node: the state machine plus pending transactions, sealed into PoW blocks.

Owns the life of a block: transactions are checked (signature, then the state machine) as they
arrive and applied to a working copy of the state; :meth:`LedgerNode.seal` mines the block,
persists it (when a :class:`ChainStore` is attached) and only then makes the working state the
node's state. A rejected transaction changes nothing. Knows nothing of tensors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bmoe.ledger.blocks import GENESIS_PREV_HASH, Block, block_hash, block_to_bytes
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.keys import Identity
from bmoe.ledger.pow import seal_block
from bmoe.ledger.state import (
    LedgerState,
    apply_block,
    apply_transaction,
    begin_block,
    finish_block,
    state_root,
)
from bmoe.ledger.transactions import Transaction, check_transaction_signature, sign_transaction


class Signer:
    """An identity with its next nonce: signs transactions in order."""

    def __init__(self, identity: Identity, next_nonce: int = 0) -> None:
        self.identity = identity
        self.next_nonce = next_nonce

    @property
    def address(self) -> str:
        return self.identity.address

    def sign(self, kind: str, payload: dict[str, object]) -> Transaction:
        tx = sign_transaction(self.identity, kind, payload, self.next_nonce)
        self.next_nonce += 1
        return tx


@dataclass
class SealStats:
    """What sealing one block cost: hashes tried, seconds spent mining, bytes of the block."""

    nonce: int
    transactions: int
    mine_seconds: float
    block_bytes: int


class LedgerNode:
    """State + pending block.

    ``seals``: blocks are mined and signed (B-MoE); False for a framework that keeps no ledger
    (traditional), whose rounds still go through the same state machine. ``chain``: where sealed
    blocks persist; None keeps only the head hash (an in-memory run).
    """

    def __init__(self, proposer: Identity, difficulty: int, chain: ChainStore | None, seals: bool = True) -> None:
        self.proposer = proposer
        self.difficulty = difficulty
        self.chain = chain
        self.seals = seals
        self.state = LedgerState()
        self.head_hash = GENESIS_PREV_HASH
        self.pending: list[Transaction] = []
        self.working = begin_block(self.state)
        self.last_seal: SealStats | None = None

    @classmethod
    def open(cls, proposer: Identity, difficulty: int, chain: ChainStore) -> LedgerNode:
        """A node over an existing chain: its state is derived by replaying every block."""
        node = cls(proposer, difficulty, chain, seals=True)
        for block in chain.iter_blocks():
            node.state = apply_block(node.state, block)
            node.head_hash = block_hash(block)
        node.working = begin_block(node.state)
        return node

    def submit(self, tx: Transaction) -> None:
        """Check and apply ``tx`` to the pending block; on error nothing changes."""
        check_transaction_signature(tx)
        apply_transaction(self.working, tx)  # handlers check everything before they mutate
        self.pending.append(tx)

    def seal(self, timestamp: int) -> Block | None:
        """Seal the pending transactions into a block (persisted first, then adopted)."""
        height = self.state.height + 1
        finish_block(self.working, height)
        root = state_root(self.working)
        block = None
        if self.seals:
            started = time.perf_counter()
            block = seal_block(self.proposer, height, self.head_hash, self.pending, timestamp,
                               self.difficulty, root)
            mined = time.perf_counter() - started
            data = block_to_bytes(block)
            if self.chain is not None:
                self.chain.append(block)
            self.head_hash = block_hash(block)
            self.last_seal = SealStats(block.header.nonce, len(self.pending), mined, len(data))
        self.state = self.working
        self.pending = []
        self.working = begin_block(self.state)
        return block

