"""Sealing ledger blocks by PBFT among the run's validators, in the deterministic simulator.

Every validator is a :class:`~bmoe.consensus.pbft.PbftReplica` whose ``validate`` judges the
proposed block by the ledger's one check-then-apply (``ledger/judge.py``: link, Merkle root, every
signature, the proposer enrolled in the genesis) with, as the apply, a re-execution against *its own*
copy of the ledger state (a :class:`BlockReexecutor`: ``protocol/reexecute.py`` for a classifier's run,
``protocol/lm/reexecute.py`` for a language model's): a block whose proposer forged or changed
anything gets no prepare from an honest validator, and a committed block is judged again, with its
certificate, before the validator follows it. Block 0 is mined, as under every engine. The round's proposer is the
primary of the current view. When consensus does not seal its block (a tampering or silent primary
is voted out by a view change), :meth:`PbftCluster.seal` raises ``ProposalRejected`` and the round
(a language model's: the task) is built again by the new primary (``protocol/round.py``,
``protocol/lm/round.py``).

Byzantine validators (the first ``byzantine`` ones, so the first primary is one) behave as ``attack``
says: ``tamper`` builds blocks with a manipulated output and gate update when primary
(``protocol/byzantine_validator.py``; a language model's aggregates, ``protocol/lm/byzantine_validator.py``) and
votes for anything; ``silent``, ``equivocate``, ``garbage`` and ``replay`` are the consensus-level behaviours of
``consensus/byzantine.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bmoe.consensus.byzantine import Equivocate, Garbage, Replay, Silent, permissive
from bmoe.consensus.engine import ConsensusReplica
from bmoe.consensus.pbft import PbftConfig, PbftReplica
from bmoe.consensus.pbft_rules import max_faulty
from bmoe.consensus.sim import Simulator
from bmoe.ledger.blocks import (
    GENESIS_PREV_HASH,
    Block,
    BlockHeader,
    block_from_bytes,
    block_hash,
    header_hash,
    proposal_bytes,
)
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.judge import Apply, Judged, check_then_apply
from bmoe.ledger.keys import Identity
from bmoe.ledger.merkle import merkle_root
from bmoe.ledger.node import ConsensusStalled, Proposal, ProposalRejected, pow_sealer
from bmoe.ledger.seal_rules import SealRules
from bmoe.ledger.state import LedgerState, apply_block
from bmoe.ledger.transactions import tx_hash

CONSENSUS_TIMEOUT_DELAYS = 20  # the request timer, in one-way message delays


class BlockReexecutor(Protocol):
    """One validator's re-execution of the blocks it judges, in chain order."""

    def check(self, state: LedgerState, block: Block) -> LedgerState:
        """The state after ``block`` on top of ``state``, or a ``LedgerError`` naming what differs."""


def unsealed_pbft_block(proposal: Proposal) -> Block:
    """The proposer's signed block, before the certificate: what the validators vote on."""
    header = BlockHeader(height=proposal.height, prev_hash=proposal.prev_hash,
                         merkle_root=merkle_root([tx_hash(tx) for tx in proposal.transactions]),
                         timestamp=proposal.timestamp, proposer=proposal.proposer.address, consensus="pbft",
                         difficulty=0, nonce=0, state_root=proposal.state_root)
    signature = proposal.proposer.sign(bytes.fromhex(header_hash(header)))
    return Block(header, proposal.transactions, signature)


class _ValidatorView:
    """One validator's own ledger state, advanced only by blocks it saw committed.

    Every block it judges goes through the ledger's one check-then-apply (``judge.check_then_apply``),
    with this validator's re-execution of the tensor rules as the apply: a proposal as an unsealed block
    (``sealed=False``: its link, Merkle root, every transaction's and the proposer's signature, the
    proposer enrolled in the genesis), a committed block with its commit certificate (``sealed=True``).
    """

    def __init__(self, reexecutor: BlockReexecutor) -> None:
        self.reexecutor = reexecutor
        self.state = LedgerState()
        self.head = GENESIS_PREV_HASH
        self.rules: SealRules | None = None  # the genesis's, once block 0 is followed
        # block hash -> the judged block, for accepted blocks not yet adopted: a replica may execute height h
        # and judge h + 1 in one step (catch-up), before its host has adopted h
        self.checked: dict[str, Judged] = {}
        self.last_refusal: str | None = None  # why this validator last refused a proposed block

    def start_from(self, state: LedgerState, head: str, rules: SealRules | None) -> None:
        """Continue from a state its host already judged (a node that replayed its chain on disk)."""
        self.state, self.head, self.rules = state, head, rules

    def validate(self, height: int, payload: bytes) -> str | None:
        self.last_refusal = self._refusal(height, payload)
        return self.last_refusal

    def _refusal(self, height: int, payload: bytes) -> str | None:
        try:
            block = block_from_bytes(payload)
        except LedgerError as err:
            return f"not a block: {err}"
        header = block.header
        before = self.checked.get(header.prev_hash)
        state, rules = (self.state, self.rules) if header.prev_hash == self.head else \
            (before.state, before.rules) if before is not None else (None, None)
        if header.height != height or state is None or state.height != height - 1:
            return f"block {header.height} does not extend this validator's head at {self.state.height}"
        try:
            judged = check_then_apply(state, header.prev_hash, rules, block, sealed=False, apply=self.reexecutor.check)
        except LedgerError as err:
            return str(err)
        self.checked[judged.block_hash] = judged
        return None

    def adopt(self, block: Block, apply: Apply | None = None) -> None:
        """Follow a committed ``block`` (``LedgerError`` if it fails the check); ``apply``: how its state is
        derived, by default this validator's re-execution (reused when it judged the block as a proposal)."""
        cached = self.checked.get(block_hash(block))
        if apply is None:
            apply = self.reexecutor.check if cached is None else lambda state, judged_block: cached.state
        judged = check_then_apply(self.state, self.head, self.rules, block, sealed=True, apply=apply)
        self.state, self.head, self.rules = judged.state, judged.block_hash, judged.rules
        self.checked = {k: j for k, j in self.checked.items() if j.state.height > self.state.height}


class PbftCluster:
    """n PBFT validators in a simulated network; seals one block per call."""

    def __init__(self, identities: tuple[Identity, ...], byzantine: int, attack: str,
                 make_reexecutor: Callable[[str], BlockReexecutor], seed: int, delay: float, difficulty: int) -> None:
        self.mine = pow_sealer(difficulty)  # block 0, the founding block: mined by the genesis signer
        self.validators = {identity.name: identity.address for identity in identities}
        names = [identity.name for identity in identities]
        self.byzantine = set(names[:byzantine])  # the first: view 0's primary is Byzantine, the harder case
        self.attack = attack
        config = PbftConfig(timeout=CONSENSUS_TIMEOUT_DELAYS * delay)
        self.views: dict[str, _ValidatorView] = {}
        replicas: list[ConsensusReplica] = []
        for identity in identities:
            if identity.name in self.byzantine:
                replicas.append(self._byzantine(identity, config, seed))
            else:
                view = _ValidatorView(make_reexecutor(identity.name))  # its own numerics
                self.views[identity.name] = view
                replicas.append(PbftReplica(identity, self.validators, view.validate, config))
        self.sim = Simulator(replicas, seed=seed, delay=delay)
        self.view_changes = 0
        self.patience = 1000 * delay  # simulated seconds to wait for a block before giving up
        self._started: dict[int, float] = {}

    def refusals(self) -> str:
        """Why honest validators last refused a proposal (for a stalled round's message), or ""."""
        found = [f"{name}: {view.last_refusal}" for name, view in sorted(self.views.items()) if view.last_refusal]
        return "; ".join(found)

    def _byzantine(self, identity: Identity, config: PbftConfig, seed: int) -> ConsensusReplica:
        inner = PbftReplica(identity, self.validators, permissive, config)  # it votes for anything
        peers = [name for name in sorted(self.validators) if name != identity.name]
        if self.attack == "silent":
            return Silent(inner)
        if self.attack == "garbage":
            return Garbage(inner, peers, seed=seed)
        if self.attack == "replay":
            return Replay(inner, peers, seed=seed)
        if self.attack == "equivocate":
            return Equivocate(inner, identity, self.validators, colluders=sorted(self.byzantine))
        return inner  # "tamper": its blocks are tampered where they are built; it votes for anything

    def adopt_chain(self, blocks: list[Block]) -> None:
        """Bring every validator's view to the sealed chain so far (the genesis, or a resumed run):
        blocks already sealed are replayed by the ledger's rules, not re-voted."""
        for view in self.views.values():
            for block in blocks:
                view.adopt(block, apply_block)

    @property
    def honest(self) -> list[str]:
        return sorted(self.views)

    def primary(self) -> str:
        """The primary of the highest view an honest validator has installed (is active in)."""
        replicas = [self.sim.replicas[name] for name in self.honest]
        active = [r for r in replicas if r.active] or replicas  # type: ignore[attr-defined]
        return max(active, key=lambda r: r.view).primary  # type: ignore[attr-defined]

    def seal(self, proposal: Proposal) -> tuple[Block, float]:
        """Propose the block; return it with its commit certificate and the simulated seconds taken,
        or raise ProposalRejected when the view changed before it was sealed. Block 0 is mined, as under
        every engine, and every validator follows it."""
        if proposal.height == 0:
            founding, seconds = self.mine(proposal)
            self.adopt_chain([founding])
            return founding, seconds
        block = unsealed_pbft_block(proposal)
        payload = proposal_bytes(block)
        height = proposal.height
        primary = self.primary()
        started = self._started.setdefault(height, self.sim.now)  # from the first proposal for this height
        self.sim.propose(payload)

        def settled(sim: Simulator) -> bool:
            done = all(any(c.height == height for c in sim.committed[name]) for name in self.honest)
            return done or self.primary() != primary

        self.sim.run(until=self.sim.now + self.patience, stop=settled)
        commits = [c for c in self.sim.committed[self.honest[0]] if c.height == height]
        if not commits:
            if self.primary() == primary:
                raise ConsensusStalled(f"PBFT sealed no block {height} within {self.patience:g} simulated seconds "
                                       f"(more than f = {max_faulty(len(self.validators))} faulty validators?)")
            self.view_changes += 1
            raise ProposalRejected(f"validators moved from primary {primary} to {self.primary()} "
                                   f"without sealing block {height}")
        committed = commits[0]
        sealed = block_from_bytes(committed.payload)
        sealed = Block(sealed.header, sealed.transactions, sealed.proposer_signature, dict(committed.proof))
        for name, view in sorted(self.views.items()):
            try:
                view.adopt(sealed)
            except LedgerError as err:  # an honest replica that cannot follow what 2f + 1 sealed
                raise ConsensusStalled(f"validator {name} cannot follow the chain the others sealed ({err}): "
                                       "honest validators disagree on a block (under --comparison exact, "
                                       "validators on other numerics do; --comparison tolerance checks within "
                                       "a bound)") from None
        self._started.pop(height, None)
        return sealed, self.sim.now - started
