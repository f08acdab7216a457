"""A ledger node: the state machine plus pending transactions, sealed into blocks by its engine.

Owns the life of a block: transactions are checked (signature, then the state machine) as they
arrive and applied to a working copy of the state; :meth:`LedgerNode.seal` has the sealer it was
built with (PoW mining by default) seal the block, judges the sealed block by the ledger's one
check-then-apply (``judge.check_then_apply``, as :meth:`~LedgerNode.adopt` and :meth:`~LedgerNode.open`
do for blocks sealed elsewhere or earlier), persists it (when a :class:`ChainStore` is attached) and
only then makes it the node's head. A rejected transaction or block changes nothing. Knows nothing
of tensors.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

from bmoe.ledger.blocks import GENESIS_PREV_HASH, Block, block_hash, block_to_bytes
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import ChainIntegrityError, InvalidBlock, LedgerError
from bmoe.ledger.judge import Apply, Judged, check_then_apply
from bmoe.ledger.keys import Identity, PublicIdentity
from bmoe.ledger.pow import seal_block
from bmoe.ledger.seal_rules import SealRules
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

    def __init__(self, identity: Identity | PublicIdentity, next_nonce: int = 0) -> None:
        self.identity = identity  # a PublicIdentity (its owner holds the key) only counts nonces
        self.next_nonce = next_nonce

    @property
    def address(self) -> str:
        return self.identity.address

    def sign(self, kind: str, payload: dict[str, object]) -> Transaction:
        if not isinstance(self.identity, Identity):
            raise LedgerError(f"{self.identity.name}'s key is held by its owner, not by this process")
        tx = sign_transaction(self.identity, kind, payload, self.next_nonce)
        self.next_nonce += 1
        return tx


@dataclass
class SealStats:
    """What sealing one block cost: seconds of consensus (PoW mined, or PBFT's simulated time), bytes."""

    transactions: int
    mine_seconds: float
    block_bytes: int


class ProposalRejected(Exception):
    """Consensus did not seal the proposed block (a PBFT view change replaced its proposer)."""


class ConsensusStalled(RuntimeError):
    """Consensus made no progress at all: more validators are faulty than the engine tolerates."""


@dataclass(frozen=True)
class Proposal:
    """Everything a sealer needs to turn pending transactions into a block."""

    proposer: Identity
    height: int
    prev_hash: str
    transactions: tuple[Transaction, ...]
    timestamp: int
    state_root: str


Sealer = Callable[[Proposal], tuple[Block, float]]  # -> (sealed block, seconds the consensus took)


def pow_sealer(difficulty: int) -> Sealer:
    """The paper's consensus with one proposer: mine the header to ``difficulty`` leading zero bits."""

    def seal(proposal: Proposal) -> tuple[Block, float]:
        started = time.perf_counter()
        block = seal_block(proposal.proposer, proposal.height, proposal.prev_hash, proposal.transactions,
                           proposal.timestamp, difficulty, proposal.state_root)
        return block, time.perf_counter() - started

    return seal


def founding_block_mined(engine: Sealer, difficulty: int) -> Sealer:
    """``engine`` for every block after block 0, the founding block, which is mined under every engine."""
    mine = pow_sealer(difficulty)
    return lambda proposal: mine(proposal) if proposal.height == 0 else engine(proposal)


class LedgerNode:
    """State + pending block: bmoe's own ledger, a :class:`~bmoe.ledger.port.Ledger`.

    ``seals``: blocks are mined and signed (B-MoE); False for a framework that keeps no ledger
    (traditional), whose rounds still go through the same state machine. ``chain``: where sealed
    blocks persist; None keeps only the head hash (an in-memory run).
    """

    def __init__(self, proposer: Identity, difficulty: int, chain: ChainStore | None, seals: bool = True,
                 sealer: Sealer | None = None) -> None:
        self.proposer = proposer
        self.difficulty = difficulty
        self.chain = chain
        self.seals = seals
        self.sealer = sealer if sealer is not None else pow_sealer(difficulty)
        self.state = LedgerState()
        self.head_hash = GENESIS_PREV_HASH
        self.pending: list[Transaction] = []
        self.working = begin_block(self.state)
        self.last_seal: SealStats | None = None
        self.last_transactions: tuple[Transaction, ...] = ()  # of the last sealed (or, unsealed, recorded) round
        # Called at the end of each round, before its block (if any) is persisted: what makes the objects the
        # block names durable (a batching store's flush); None when every object is durable as it is written.
        self.before_persist: Callable[[], object] | None = None
        self.seal_rules: SealRules | None = None  # what block 0's genesis fixes, once it is sealed or adopted

    @classmethod
    def open(cls, proposer: Identity, difficulty: int, chain: ChainStore, sealer: Sealer | None = None) -> LedgerNode:
        """A node over an existing chain: its state is derived by judging and replaying every block, as an
        auditor would (``judge.check_then_apply``)."""
        node = cls(proposer, difficulty, chain, seals=True, sealer=sealer)
        for block in chain.iter_blocks():
            node._advance(block, node._judged(block))
        return node

    def submit(self, tx: Transaction) -> None:
        """Check and apply ``tx`` to the pending block; on error nothing changes."""
        check_transaction_signature(tx)
        apply_transaction(self.working, tx)  # handlers check everything before they mutate
        self.pending.append(tx)

    def check(self, tx: Transaction) -> str | None:
        """Why ``tx`` would be refused on top of the pending block, or None; changes nothing."""
        try:
            check_transaction_signature(tx)
            apply_transaction(copy.deepcopy(self.working), tx)
        except LedgerError as err:
            return str(getattr(err, "reason", err))
        return None

    def next_nonce(self, address: str) -> int:
        """The nonce ``address``'s next transaction must carry, counting the pending block."""
        return self.working.next_nonce(address)

    def view(self) -> LedgerState:
        """The sealed state (read-only by convention)."""
        return self.state

    def pending_view(self) -> LedgerState:
        """The sealed state with the pending block's transactions applied (read-only by convention): what the
        round's next transaction is judged against."""
        return self.working

    def adopt(self, block: Block) -> None:
        """Follow ``block``, sealed elsewhere (a peer, a contract, this node's consensus), after judging it as
        an auditor judges a stored block (``judge.check_then_apply``: its link, Merkle root, signatures,
        proof of work, seal against the genesis, then its state root by replay); on error (``LedgerError``)
        nothing changes. The pending block, built on the old head, is dropped."""
        if block.header.prev_hash != self.head_hash:
            raise InvalidBlock(block.header.height, "does not extend this node's head")
        judged = self._judged(block)
        self.persist(block)
        self._advance(block, judged)

    def _judged(self, block: Block, apply: Apply = apply_block) -> Judged:
        """``block`` judged on top of the sealed state, every fault an ``InvalidBlock`` naming the block."""
        try:
            return check_then_apply(self.state, self.head_hash, self.seal_rules, block, apply=apply)
        except ChainIntegrityError as err:
            where = "" if err.tx_index is None else f"transaction {err.tx_index}: "
            raise InvalidBlock(block.header.height, where + err.reason) from None

    def _advance(self, block: Block, judged: Judged) -> None:
        """Make a judged (and persisted) block the node's head; the pending block starts afresh."""
        self.state, self.head_hash, self.seal_rules = judged.state, judged.block_hash, judged.rules
        self.last_transactions = block.transactions
        self.pending = []
        self.working = begin_block(self.state)

    def discard_pending(self) -> None:
        """Forget the pending block (its proposal was rejected); the sealed state is untouched."""
        self.pending = []
        self.working = begin_block(self.state)

    def persist(self, block: Block) -> None:
        """Append a sealed ``block`` to the chain, once every object it names is durable."""
        if self.before_persist is not None:
            self.before_persist()
        if self.chain is not None:
            self.chain.append(block)

    def seal(self, timestamp: int, proposer: Identity | None = None) -> Block | None:
        """Seal the pending transactions into a block: the engine seals it, the node judges the sealed block
        like any other (``adopt``'s check-then-apply), persists it and only then adopts it.

        Raises :class:`ProposalRejected` when consensus does not seal this proposal; the node then
        keeps its pending block until :meth:`discard_pending`. A sealed block that fails the check raises
        ``InvalidBlock`` and changes nothing.
        """
        height = self.state.height + 1
        finish_block(self.working, height)
        if not self.seals:  # no block (traditional): the round's objects are durable at its end
            if self.before_persist is not None:
                self.before_persist()
            self.state, self.last_transactions = self.working, tuple(self.pending)
            self.pending, self.working = [], begin_block(self.state)
            return None
        proposal = Proposal(proposer or self.proposer, height, self.head_hash, tuple(self.pending), timestamp,
                            state_root(self.working))
        block, seconds = self.sealer(proposal)
        built = self.working

        def apply(state: LedgerState, sealed: Block) -> LedgerState:
            # the pending block was applied transaction by transaction as it was built: when consensus sealed
            # exactly it, its state is the replay's; another proposal for this height (PBFT: one queued
            # earlier, re-proposed by a new primary) is replayed.
            if (sealed.header.height, sealed.transactions, sealed.header.state_root) != (
                    proposal.height, proposal.transactions, proposal.state_root):
                return apply_block(state, sealed)
            built.head = block_hash(sealed)  # the next block's tasks draw their samples from it
            return built

        judged = self._judged(block, apply)
        self.persist(block)
        self._advance(block, judged)
        self.last_seal = SealStats(len(block.transactions), seconds, len(block_to_bytes(block)))
        return block
