"""A bmoe chain as the contract's calls: the genesis as its constructor, each block as ``sealBlock``.

Owns the translation, in pure functions (no web3, no I/O):

* :func:`enrolment_of` - the genesis payload (and the validators' Ethereum accounts) as the constructor's
  enrolment: edges and stakes, the gate and expert CIDs, the acceptance rule as a fraction, the comparison;
* :func:`block_records` - one sealed block, replayed on the state before it, as the header digests and the
  records the contract checks: the round's task and activation, every commitment (one per edge, expert
  and phase), dispute, decision (with the assigned count, from ``LedgerState.assigned_edges`` before the
  decision, and the supporters, from the verdict the state machine derived) and misbehaviour record,
  and the gate update.

The block is replayed with the ledger's own state machine, so a block it refuses is refused here too.
A block holds one round (one task), as every bmoe round seals one block; the contract records at most
one task per block.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from bmoe.ethereum.cids import NO_CID, ChainCid, cid_to_chain, optional_cid
from bmoe.ethereum.errors import RecordsError
from bmoe.ledger.blocks import Block, block_hash, proposal_bytes
from bmoe.ledger.economics import Economics
from bmoe.ledger.encoding import canonical_json
from bmoe.ledger.errors import LedgerError
from bmoe.ledger.state import LedgerState, apply_block, apply_transaction, begin_block
from bmoe.ledger.transactions import Transaction
from bmoe.storage import cid_of
from bmoe.verify.acceptance import AcceptanceRule, required_votes
from bmoe.verify.comparison import make_comparison
from bmoe.verify.framework import FRAMEWORKS

# The contract's codes (contracts/BmoeLedger.vy).
KINDS = {"train": 1, "infer": 2}
PHASES = {"result": 0, "update": 1}
STATUSES = {"accepted": 1, "no_quorum": 2, "malformed": 3}
REASONS = {"dissent": 1, "withheld": 2}
# The contract's bounds per block (a test keeps them equal to the source's).
BOUNDS = {"commitments": 512, "decisions": 128, "misbehaviours": 256, "disputes": 64, "group": 256}
MAX_QUORUM_DENOMINATOR = 10**6
ZERO32 = b"\x00" * 32


@dataclass(frozen=True)
class Enrolment:
    """The constructor's arguments: who may seal, the edges and their stakes, the model, the rule."""

    validators: tuple[str, ...]  # Ethereum accounts (0x hex) allowed to call sealBlock
    edges: tuple[bytes, ...]  # Ed25519 addresses, 32 bytes each, in genesis order
    stakes: tuple[int, ...]  # per edge; all 0 without economics
    gate: ChainCid
    experts: tuple[ChainCid, ...]
    quorum: tuple[int, int, bool]  # numerator, denominator, strict (more than) / at least
    exact: bool  # the comparison groups by equal digests (exact, integer), not by recorded groups
    reward: int = 0
    slash: int = 0
    min_stake: int = 0

    def constructor_args(self) -> tuple[Any, ...]:
        numerator, denominator, strict = self.quorum
        return (list(self.validators), list(self.edges), list(self.stakes), self.gate, list(self.experts),
                numerator, denominator, strict, self.exact, self.reward, self.slash, self.min_stake)


@dataclass(frozen=True)
class SealHeader:
    height: int
    parent_hash: bytes
    block_hash: bytes
    state_root: bytes
    block_cid: ChainCid


@dataclass(frozen=True)
class RoundRecord:
    task: bytes  # sha256 of the task id
    kind: int
    activation_cid: ChainCid
    counts_hash: bytes  # sha256 of the canonical JSON of the per-expert counts
    activation_gate: ChainCid  # the gate the activation evaluated
    gate_update: ChainCid  # train: the gate after the round; infer: NO_CID


@dataclass(frozen=True)
class CommitmentRecord:
    expert: int
    phase: int
    edge: bytes
    digest: bytes
    cid: ChainCid


@dataclass(frozen=True)
class DisputeRecord:
    expert: int
    phase: int


@dataclass(frozen=True)
class DecisionRecord:
    expert: int
    phase: int
    status: int
    digest: bytes  # ZERO32 for no_quorum
    cid: ChainCid  # NO_CID unless accepted
    assigned: int
    supporters: tuple[bytes, ...]  # the accepted (or malformed) group, ascending; () for no_quorum


@dataclass(frozen=True)
class MisbehaviourRecord:
    expert: int
    phase: int
    edge: bytes
    reason: int
    evidence: bytes  # ZERO32 for withheld


@dataclass(frozen=True)
class BlockRecords:
    """One ``sealBlock`` call."""

    header: SealHeader
    round: RoundRecord | None
    commitments: tuple[CommitmentRecord, ...] = ()
    disputes: tuple[DisputeRecord, ...] = ()
    decisions: tuple[DecisionRecord, ...] = ()
    misbehaviours: tuple[MisbehaviourRecord, ...] = ()

    def call_args(self) -> tuple[Any, ...]:
        """``sealBlock``'s seven arguments, as web3 encodes them."""
        h = self.header
        rounds = [] if self.round is None else [(self.round.task, self.round.kind, self.round.activation_cid,
                                                  self.round.counts_hash, self.round.activation_gate,
                                                  self.round.gate_update)]
        return ((h.height, h.parent_hash, h.block_hash, h.state_root, h.block_cid), rounds,
                [(c.expert, c.phase, c.edge, c.digest, c.cid) for c in self.commitments],
                [(d.expert, d.phase) for d in self.disputes],
                [(d.expert, d.phase, d.status, d.digest, d.cid, d.assigned, len(d.supporters))
                 for d in self.decisions],
                [edge for d in self.decisions for edge in d.supporters],
                [(m.expert, m.phase, m.edge, m.reason, m.evidence) for m in self.misbehaviours])


# ---------------------------------------------------------------- the genesis


def quorum_of(rule: AcceptanceRule, max_edges: int) -> tuple[int, int, bool]:
    """The rule as the contract's fraction: majority = more than 1/2, fraction q = at least q (as a ratio),
    checked to give :func:`~bmoe.verify.acceptance.required_votes` for every assigned count up to ``max_edges``."""
    if rule.name == "majority":
        quorum = (1, 2, True)
    elif rule.name == "fraction":
        ratio = Fraction(rule.fraction).limit_denominator(MAX_QUORUM_DENOMINATOR)
        quorum = (ratio.numerator, ratio.denominator, False)
    else:
        raise RecordsError(f"the contract enforces the majority and fraction rules, not {rule.name!r}")
    numerator, denominator, strict = quorum
    for assigned in range(1, max_edges + 1):
        smallest = next(size for size in range(1, assigned + 1)
                        if (size * denominator > numerator * assigned if strict
                            else size * denominator >= numerator * assigned))
        if smallest != required_votes(rule, assigned):
            raise RecordsError(f"acceptance fraction {rule.fraction} has no exact ratio the contract can hold "
                               f"(among {assigned} edges it needs {required_votes(rule, assigned)}, the ratio "
                               f"{numerator}/{denominator} {smallest})")
    return quorum


def enrolment_of(genesis: Mapping[str, Any], validators: Sequence[str]) -> Enrolment:
    """The constructor's enrolment for a run whose genesis payload is ``genesis`` (its ``consensus`` section
    is not read: it names the contract, which does not exist yet); ``validators``: the Ethereum accounts
    that may seal."""
    if genesis.get("framework") not in FRAMEWORKS or not FRAMEWORKS[genesis["framework"]].keeps_ledger:
        raise RecordsError("only a B-MoE run keeps a ledger to seal on Ethereum")
    edges = tuple(genesis["edges"])
    spec = genesis.get("economics")
    economics = None if spec is None else Economics.from_spec(spec, edges)
    stakes = tuple(0 if economics is None else economics.stakes[edge] for edge in edges)
    return Enrolment(
        validators=tuple(validators), edges=tuple(bytes.fromhex(edge) for edge in edges), stakes=stakes,
        gate=cid_to_chain(genesis["gate_cid"]), experts=tuple(cid_to_chain(cid) for cid in genesis["expert_cids"]),
        quorum=quorum_of(AcceptanceRule.from_dict(genesis["rule"]), len(edges)),
        exact=not make_comparison(genesis["comparison"]).records_groups,
        reward=0 if economics is None else economics.reward, slash=0 if economics is None else economics.slash,
        min_stake=0 if economics is None else economics.min_stake)


# ---------------------------------------------------------------- a block


def task_key(task_id: str) -> bytes:
    """The task id as the contract holds it."""
    return hashlib.sha256(task_id.encode("utf-8")).digest()


def counts_hash(counts: Sequence[int]) -> bytes:
    return hashlib.sha256(canonical_json(list(counts))).digest()


def sealed_block_cid(block: Block) -> str:
    """The CID the contract records for ``block``: of its bytes without a certificate (``proposal_bytes``),
    since an Ethereum certificate names the transaction that records this CID. Store these bytes."""
    return cid_of(proposal_bytes(block))


def _header(block: Block) -> SealHeader:
    header = block.header
    if len(header.state_root) != 64:
        raise RecordsError(f"block {header.height}: the contract holds 32-byte state roots, not "
                           f"{len(header.state_root) // 2} bytes")
    return SealHeader(header.height, bytes.fromhex(header.prev_hash), bytes.fromhex(block_hash(block)),
                      bytes.fromhex(header.state_root), cid_to_chain(sealed_block_cid(block)))


@dataclass
class _Collected:
    """The records of one block, gathered transaction by transaction."""

    task: tuple[bytes, int] | None = None
    activation: tuple[ChainCid, bytes, ChainCid] | None = None
    gate_update: ChainCid = NO_CID
    commitments: list[CommitmentRecord] = field(default_factory=list)
    disputes: list[DisputeRecord] = field(default_factory=list)
    decisions: list[DecisionRecord] = field(default_factory=list)
    misbehaviours: list[MisbehaviourRecord] = field(default_factory=list)


def _collect(working: LedgerState, tx: Transaction, found: _Collected, height: int) -> None:
    """Apply ``tx`` to ``working`` and add what it records to ``found``."""
    payload, kind = tx.payload, tx.kind
    assigned: dict[int, int] = {}
    if kind in ("acceptance", "update_acceptance"):  # the quorum's denominator, as the rule saw it
        task = working.tasks.get(payload["task_id"])
        if task is not None:
            assigned = {entry["expert"]: len(working.assigned_edges(entry["expert"], task))
                        for entry in payload["decisions"]}
    apply_transaction(working, tx)
    if kind == "task":
        if found.task is not None:
            raise RecordsError(f"block {height} holds more than one task; the contract records one round per block")
        found.task = (task_key(payload["task_id"]), KINDS[payload["kind"]])
    elif kind == "activation":
        found.activation = (cid_to_chain(payload["activation_cid"]), counts_hash(payload["counts"]),
                            cid_to_chain(payload["gate_cid"]))
    elif kind in ("commitment", "expert_update"):
        phase = PHASES["result" if kind == "commitment" else "update"]
        entries = payload["results" if kind == "commitment" else "updates"]
        found.commitments += [CommitmentRecord(entry["expert"], phase, bytes.fromhex(tx.sender),
                                               bytes.fromhex(entry["digest"]), cid_to_chain(entry["cid"]))
                              for entry in entries]
    elif kind == "dispute":
        found.disputes += [DisputeRecord(entry["expert"], PHASES[payload["phase"]]) for entry in payload["disputes"]]
    elif kind in ("acceptance", "update_acceptance"):
        phase_name = "result" if kind == "acceptance" else "update"
        verdicts = working.tasks[payload["task_id"]].verdicts[phase_name]
        for entry in payload["decisions"]:
            expert, status = entry["expert"], entry["status"]
            supporters = () if status == "no_quorum" else tuple(sorted(bytes.fromhex(edge)
                                                                      for edge in verdicts[expert].supporters))
            digest = ZERO32 if entry["digest"] is None else bytes.fromhex(entry["digest"])
            found.decisions.append(DecisionRecord(expert, PHASES[phase_name], STATUSES[status], digest,
                                                  optional_cid(entry["cid"]), assigned[expert], supporters))
    elif kind == "misbehaviour":
        found.misbehaviours += [MisbehaviourRecord(
            record["expert"], PHASES[payload["phase"]], bytes.fromhex(payload["edge"]), REASONS[record["reason"]],
            ZERO32 if record["evidence"] is None else bytes.fromhex(record["evidence"]))
            for record in payload["records"]]
    elif kind == "gate_update":
        found.gate_update = cid_to_chain(payload["gate_cid"])


def _round(found: _Collected, height: int) -> RoundRecord | None:
    if found.task is None:
        return None
    if found.activation is None:
        raise RecordsError(f"block {height}: its task has no activation")
    activation_cid, counts, gate = found.activation
    return RoundRecord(found.task[0], found.task[1], activation_cid, counts, gate, found.gate_update)


def _check_bounds(records: BlockRecords) -> None:
    sizes = {"commitments": len(records.commitments), "decisions": len(records.decisions),
             "misbehaviours": len(records.misbehaviours), "disputes": len(records.disputes),
             "group": max((len(d.supporters) for d in records.decisions), default=0)}
    for name, size in sizes.items():
        if size > BOUNDS[name]:
            what = "supporters in one decision" if name == "group" else name
            raise RecordsError(f"block {records.header.height} holds {size} {what}; the contract takes at most "
                               f"{BOUNDS[name]} per block")


def block_records(state: LedgerState, block: Block) -> tuple[BlockRecords, LedgerState]:
    """``block``'s ``sealBlock`` call and the state after it, replaying ``block`` on ``state`` (the state after
    its parent); :class:`RecordsError` if the ledger refuses the block or the contract could not take it."""
    height = block.header.height
    try:
        after = apply_block(state, block)  # every rule of the ledger, the state root included
        working, found = begin_block(state), _Collected()
        for tx in block.transactions:
            _collect(working, tx, found, height)
    except LedgerError as err:
        raise RecordsError(f"block {height}: the ledger refuses it: {err}") from None
    records = BlockRecords(_header(block), _round(found, height), tuple(found.commitments), tuple(found.disputes),
                           tuple(found.decisions), tuple(found.misbehaviours))
    _check_bounds(records)
    return records, after
