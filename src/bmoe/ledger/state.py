"""The ledger's state machine: the rules of a B-MoE round, applied transaction by transaction.

Owns: what every transaction kind means, who may send it, and what it changes. It knows
digests, CIDs and small numbers, never tensors. Everything a participant trusts (the gate's CID,
the experts' CIDs, accepted results, each edge's record) is what :func:`apply_block` derives by
replaying sealed blocks; nothing else is authoritative.

The verification of a round is checked here: an ``acceptance`` or ``update_acceptance`` is valid
only if it equals what the run's acceptance rule decides over the commitments already recorded, and a
``misbehaviour`` record only if its evidence is what the accused edge committed. The rules themselves
are ``verify/phase.py``'s, the same functions the proposer builds with.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bmoe.ledger.blocks import GENESIS_PREV_HASH, Block, block_hash
from bmoe.ledger.economics import Balance, Economics, EconomicsError, eligible_edges, opening_balances
from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.ledger.errors import InvalidBlock, InvalidTransaction
from bmoe.ledger.generation import dispute_error, record_error
from bmoe.ledger.genesis_views import GenesisViews
from bmoe.ledger.payments import (
    ChunkFacts,
    PaymentAccount,
    chunk_facts,
    opening_accounts,
    pricing_of,
    settle,
    settlement_error,
)
from bmoe.ledger.placement import (
    Declaration,
    PlacementState,
    apply_placement,
    capability_error,
    departure_error,
    placement_error,
    slot_edges,
)
from bmoe.ledger.pricing import PricingError
from bmoe.ledger.quality import response_key, verdict_error
from bmoe.ledger.schemas import Limits, payload_error
from bmoe.ledger.transactions import Transaction, tx_hash, tx_payload_size
from bmoe.verify.acceptance import AcceptanceRule, Verdict
from bmoe.verify.assignment import Adaptive, Assignment, AssignmentError, make_assignment, task_seed
from bmoe.verify.bound_window import BoundWindowError, check_genesis_window
from bmoe.verify.comparison import Comparison, make_comparison
from bmoe.verify.framework import FRAMEWORKS
from bmoe.verify.phase import PHASES as PHASE_TABLE
from bmoe.verify.phase import (
    accusation_error,
    decision_error,
    grouped_decision_error,
    grouped_verdict,
    groups_error,
    sample_split,
    status_of,
    verdict_of,
)

PHASES = tuple(PHASE_TABLE)  # result, update


@dataclass
class EdgeRecord:
    """An edge's track record, derived from the chain."""

    committed: int = 0
    accepted: int = 0
    dissent: int = 0
    withheld: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"committed": self.committed, "accepted": self.accepted, "dissent": self.dissent,
                "withheld": self.withheld}


@dataclass
class TaskState:
    """One task (one round) while its block is being applied."""

    task_id: str
    kind: str
    data_cid: str
    samples: int
    round: int
    counts: list[int] | None = None
    activation_cid: str | None = None
    commitments: dict[str, dict[int, dict[str, tuple[str, str]]]] = field(
        default_factory=lambda: {phase: {} for phase in PHASES}
    )
    verdicts: dict[str, dict[int, Verdict]] = field(default_factory=lambda: {phase: {} for phase in PHASES})
    accepted_cids: dict[str, dict[int, str | None]] = field(
        default_factory=lambda: {phase: {} for phase in PHASES}
    )
    accusations: set[tuple[str, int, str]] = field(default_factory=set)
    update_bases: dict[int, str] = field(default_factory=dict)  # expert -> the CID its updates start from
    seed: bytes = b""  # the assignment's seed: the previous block's hash and the activation CID
    escalated: dict[int, str] = field(default_factory=dict)  # disputed expert -> the phase it was disputed in
    eligible: tuple[str, ...] | None = None  # economics: the edges holding the minimum stake at activation
    trusted: frozenset[str] = frozenset()  # adaptive assignment: the edges trusted at activation
    output_cid: str | None = None  # the aggregated MoE output, recorded with the result decisions
    gate_updated: bool = False

    def activated(self) -> list[int]:
        return [expert for expert, count in enumerate(self.counts or []) if count > 0]


@dataclass
class LedgerState:
    """Everything derived from the chain so far."""

    height: int = -1
    head: str = GENESIS_PREV_HASH  # the hash of the last block applied (a task's sample derives from it)
    genesis: dict[str, Any] | None = None
    gate_cid: str = ""
    expert_cids: list[str] = field(default_factory=list)
    edge_records: dict[str, EdgeRecord] = field(default_factory=dict)
    nonces: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, TaskState] = field(default_factory=dict)  # the tasks of the latest block
    task_count: int = 0
    train_tasks: int = 0
    results_root: str = "0" * 64  # running hash over every accepted outcome
    balances: dict[str, Balance] = field(default_factory=dict)  # economics: each edge's account (else empty)
    streaks: dict[str, int] = field(default_factory=dict)  # adaptive: accepted answers since the last accusation
    generations: dict[str, int] = field(default_factory=dict)  # generation id -> chunks recorded (ledger/generation.py)
    generated_tokens: int = 0  # tokens of every recorded chunk
    payments: dict[str, PaymentAccount] = field(default_factory=dict)  # account -> paid/earned (ledger/payments.py)
    unsettled: dict[str, ChunkFacts] = field(default_factory=dict, compare=False)  # this block's chunks, by generation
    quality_verdicts: dict[str, int] = field(default_factory=dict)  # generation id -> verdicts (ledger/quality.py)
    misjudged: dict[str, int] = field(default_factory=dict)  # quality validator -> verdicts it misjudged in
    quality_responses: set[str] = field(default_factory=set)  # responses with a verdict (one each; not summarised)
    fleet: PlacementState = field(default_factory=PlacementState)  # declarations and placement (ledger/placement.py)

    genesis_views: GenesisViews = field(default_factory=GenesisViews, init=False, repr=False, compare=False)

    # Read-only views of the genesis parameters, each built once per genesis (``ledger/genesis_views.py``).
    @property
    def edges(self) -> tuple[str, ...]:
        return self.genesis_views.view(self._genesis, "edges", tuple)

    @property
    def validators(self) -> tuple[str, ...]:
        return self.genesis_views.view(self._genesis, "validators", tuple)

    @property
    def publisher(self) -> str:
        return str(self._genesis["publisher"])

    @property
    def rule(self) -> AcceptanceRule:
        return self.genesis_views.view(self._genesis, "rule", AcceptanceRule.from_dict)

    @property
    def comparison(self) -> Comparison:
        return self.genesis_views.view(self._genesis, "comparison", make_comparison)

    @property
    def _genesis(self) -> dict[str, Any]:
        if self.genesis is None:
            raise InvalidTransaction(None, "no genesis recorded yet")
        return self.genesis

    @property
    def assignment(self) -> Assignment:
        return self.genesis_views.view(self._genesis, "assignment", make_assignment)

    @property
    def economics(self) -> Economics | None:
        """Stake, rewards and slashing (``ledger/economics.py``), or None when the run has none."""
        spec = self._genesis.get("economics")
        return None if spec is None else Economics.from_spec(spec, self.edges)

    def task_edges(self, task: TaskState) -> tuple[str, ...]:
        """The edges a task may assign: every edge, or under economics those holding the minimum stake
        when its activation was recorded."""
        return self.edges if task.eligible is None else task.eligible

    def assigned_edges(self, expert: int, task: TaskState) -> tuple[str, ...]:
        """The edges that must compute ``expert`` in ``task`` under the genesis's policy (all edges in
        B-MoE, its host in traditional, r of them drawn from the task's seed when sampled); every edge
        once the expert was disputed in this task (for the rest of the task: its update too)."""
        if expert in task.escalated:
            return self.task_edges(task)
        return self.sampled_edges(expert, task)

    def sampled_edges(self, expert: int, task: TaskState) -> tuple[str, ...]:
        """The policy's own edges for ``expert`` in ``task``, before any dispute."""
        return self.assignment.assigned(self.task_edges(task), expert, tuple(task.activated()), task.seed,
                                        task.trusted)

    def undisputed_split(self, expert: int, task: TaskState, phase: str,
                         groups: list[tuple[str, ...]] | None = None) -> str | None:
        """Why ``expert``'s sample in ``phase`` must be disputed before it is decided, or None: the
        policy escalates, the sample is not every edge, the expert was not escalated, and the sample
        is split or incomplete (:func:`~bmoe.verify.phase.sample_split`)."""
        if not self.assignment.escalates or expert in task.escalated:
            return None
        sample = self.sampled_edges(expert, task)
        if len(sample) == len(self.task_edges(task)):
            return None
        return sample_split(task.commitments[phase].get(expert, {}), sample, groups)

    def next_nonce(self, address: str) -> int:
        """The nonce ``address``'s next transaction must carry on top of this state (the one nonce rule)."""
        return self.nonces.get(address, -1) + 1

    def summary(self) -> dict[str, Any]:
        """The compact, hashable part of the state (what the state root commits to); the balances only
        when the run has economics, so every earlier chain keeps its roots."""
        summary = {
            "height": self.height,
            "gate_cid": self.gate_cid,
            "expert_cids": list(self.expert_cids),
            "edge_records": {edge: record.to_dict() for edge, record in sorted(self.edge_records.items())},
            "nonces": dict(sorted(self.nonces.items())),
            "task_count": self.task_count,
            "train_tasks": self.train_tasks,
            "results_root": self.results_root,
        }
        if self.balances:
            summary["balances"] = {edge: balance.to_dict() for edge, balance in sorted(self.balances.items())}
        if self.streaks:
            summary["streaks"] = dict(sorted(self.streaks.items()))
        if self.generations:  # only once something was generated: every earlier chain keeps its roots
            summary["generations"] = dict(sorted(self.generations.items()))
            summary["generated_tokens"] = self.generated_tokens
        if self.payments:  # only in a session that takes payments
            summary["payments"] = {account: held.to_dict() for account, held in sorted(self.payments.items())}
        if self.quality_verdicts:  # only once a response was scored: every earlier chain keeps its roots
            summary["quality_verdicts"] = dict(sorted(self.quality_verdicts.items()))
        if self.misjudged:
            summary["misjudged"] = dict(sorted(self.misjudged.items()))
        fleet = self.fleet.summary()
        if fleet is not None:  # only once an edge declared: every earlier chain keeps its roots
            summary["fleet"] = fleet
        return summary


def state_root(state: LedgerState) -> str:
    """SHA-256 over the canonical JSON of the state summary."""
    return sha256_hex(canonical_json(state.summary()))


# ---------------------------------------------------------------- transactions


def _require(condition: bool, tx: Transaction, reason: str) -> None:
    if not condition:
        raise InvalidTransaction(_hash_or_none(tx), f"{tx.kind}: {reason}")


def _hash_or_none(tx: Transaction) -> str | None:
    """The transaction's hash, or None when its payload is not even canonical JSON (NaN, say)."""
    try:
        return tx_hash(tx)
    except (TypeError, ValueError, RecursionError):
        return None


def _field(tx: Transaction, name: str, kind: type | tuple[type, ...]) -> Any:
    value = tx.payload.get(name)
    _require(isinstance(value, kind) and not (kind is int and isinstance(value, bool)), tx,
             f"field {name!r} missing or not {getattr(kind, '__name__', kind)}")
    return value


def _task(state: LedgerState, tx: Transaction) -> TaskState:
    task_id = _field(tx, "task_id", str)
    _require(task_id in state.tasks, tx, f"unknown task {task_id!r} in this block")
    return state.tasks[task_id]


def _entries(tx: Transaction, name: str) -> list[dict[str, Any]]:
    """The payload's list ``name`` (its records' fields and types are the schema's, checked before
    any handler runs), in strictly increasing ``expert`` order."""
    entries = tx.payload[name]
    experts = [entry["expert"] for entry in entries]
    _require(all(a < b for a, b in itertools.pairwise(experts)), tx,
             f"{name!r} must be in strictly increasing expert order")
    return entries


def _activated_expert(state: LedgerState, tx: Transaction, task: TaskState, expert: int) -> None:
    _require(0 <= expert < len(state.expert_cids), tx, f"no expert {expert}")
    _require(task.counts is not None and task.counts[expert] > 0, tx,
             f"expert {expert} is not activated in task {task.task_id}")


def _from_validator(state: LedgerState, tx: Transaction) -> None:
    _require(tx.sender in state.validators, tx, "sender is not a validator")


def apply_genesis(state: LedgerState, tx: Transaction) -> None:
    _require(state.genesis is None and state.height == -1, tx, "genesis only once, in block 0")
    payload = dict(tx.payload)
    for name in ("edges", "validators", "expert_cids"):
        _require(isinstance(payload.get(name), list) and payload[name], tx, f"{name} must be a non-empty list")
    _require(isinstance(payload.get("publisher"), str), tx, "publisher missing")
    _require(tx.sender in payload["validators"], tx, "genesis must be signed by a validator")
    try:
        assignment = make_assignment(payload.get("assignment"))
        assignment.check(len(payload["edges"]))
    except AssignmentError as err:
        raise InvalidTransaction(tx_hash(tx), f"genesis: {err}") from None
    _require(isinstance(payload.get("gate_cid"), str), tx, "gate_cid missing")
    _require(isinstance(payload.get("top_k"), int) and 1 <= payload["top_k"] <= len(payload["expert_cids"]),
             tx, "top_k must be in [1, N]")
    try:
        AcceptanceRule.from_dict(payload["rule"])
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidTransaction(tx_hash(tx), f"genesis: bad acceptance rule ({err})") from None
    _require(len(set(payload["edges"])) == len(payload["edges"]), tx, "duplicate edge keys")
    _require(payload.get("num_experts") == len(payload["expert_cids"]), tx, "num_experts must equal len(expert_cids)")
    try:
        check_genesis_window(payload)
    except BoundWindowError as err:
        raise InvalidTransaction(tx_hash(tx), f"genesis: {err}") from None
    economics = None
    if "economics" in payload:
        _require(FRAMEWORKS[payload["framework"]].verifies, tx,
                 "economics applies to B-MoE, whose answers are verified")
        try:
            economics = Economics.from_spec(payload["economics"], tuple(payload["edges"]))
        except EconomicsError as err:
            raise InvalidTransaction(tx_hash(tx), f"genesis: {err}") from None
    try:
        pricing_of(payload)
    except PricingError as err:
        raise InvalidTransaction(tx_hash(tx), f"genesis: {err}") from None
    state.genesis = payload
    state.balances = opening_balances(economics) if economics is not None else {}
    state.payments = opening_accounts(payload)
    state.streaks = {edge: 0 for edge in payload["edges"]} if assignment.uses_trust else {}
    state.gate_cid = payload["gate_cid"]
    state.expert_cids = list(payload["expert_cids"])
    state.edge_records = {edge: EdgeRecord() for edge in payload["edges"]}


def apply_task(state: LedgerState, tx: Transaction) -> None:
    _require(tx.sender == state.publisher, tx, "only the publisher submits tasks")
    task_id = _field(tx, "task_id", str)
    kind = _field(tx, "kind", str)
    _require(kind in ("train", "infer"), tx, "kind must be 'train' or 'infer'")
    _require(task_id not in state.tasks, tx, f"task {task_id!r} already in this block")
    samples = _field(tx, "samples", int)
    _require(samples > 0, tx, "samples must be positive")
    state.tasks[task_id] = TaskState(task_id, kind, _field(tx, "data_cid", str), samples,
                                     _field(tx, "round", int))
    state.task_count += 1
    state.train_tasks += kind == "train"


def apply_activation(state: LedgerState, tx: Transaction) -> None:
    _from_validator(state, tx)
    task = _task(state, tx)
    _require(task.counts is None, tx, "task already activated")
    _require(_field(tx, "gate_cid", str) == state.gate_cid, tx, "gate_cid is not the ledger's gate")
    counts = _field(tx, "counts", list)
    _require(len(counts) == len(state.expert_cids) and all(isinstance(c, int) and c >= 0 for c in counts),
             tx, "counts must list a non-negative count per expert")
    top_k = int(state._genesis["top_k"])
    _require(sum(counts) == top_k * task.samples, tx, "counts must sum to top_k x samples")
    activation_cid = _field(tx, "activation_cid", str)
    task.counts = counts
    task.activation_cid = activation_cid
    task.seed = task_seed(state.head, activation_cid)
    economics = state.economics
    if economics is not None:
        task.eligible = eligible_edges(state.edges, state.balances, economics.min_stake)
    assignment = state.assignment
    if isinstance(assignment, Adaptive):
        task.trusted = frozenset(edge for edge, streak in state.streaks.items() if streak >= assignment.trust_after)


def _commit(state: LedgerState, tx: Transaction, phase: str) -> None:
    """An edge's signed (digest, CID) per expert it computed (phase result) or updated (update)."""
    task = _task(state, tx)
    _require(tx.sender in state.edge_records, tx, "sender is not an enrolled edge")
    _require(not task.verdicts[phase], tx, f"{phase}s of this task are already decided")
    entries = _entries(tx, PHASE_TABLE[phase].commit_entries)
    if phase == "update":
        _require(task.gate_updated, tx, "update before the loss and gradients were recorded")
    else:
        _require(task.counts is not None, tx, "commitment before activation")
    for entry in entries:
        expert = entry["expert"]
        _activated_expert(state, tx, task, expert)
        _require(tx.sender in state.assigned_edges(expert, task), tx, f"sender is not assigned expert {expert}")
        _require(tx.sender not in task.commitments[phase].get(expert, {}), tx,
                 f"edge already committed for expert {expert}")
        if phase == "update":
            _require(task.accepted_cids["result"].get(expert) is not None, tx,
                     f"expert {expert} had no accepted result to update from")
            _require(entry["base_cid"] == state.expert_cids[expert], tx,
                     f"base_cid of expert {expert} is not its current CID")
    for entry in entries:
        task.commitments[phase].setdefault(entry["expert"], {})[tx.sender] = (entry["digest"], entry["cid"])
        if phase == "update":
            task.update_bases[entry["expert"]] = entry["base_cid"]
    state.edge_records[tx.sender].committed += len(entries)


def apply_commitment(state: LedgerState, tx: Transaction) -> None:
    _commit(state, tx, "result")


def apply_expert_update(state: LedgerState, tx: Transaction) -> None:
    _commit(state, tx, "update")


def _decide_entry(state: LedgerState, tx: Transaction, task: TaskState, phase: str,
                  entry: Mapping[str, Any]) -> tuple[Verdict, str | None]:
    """Check one decision against the rule; return the verdict and the accepted CID (or None)."""
    expert = entry["expert"]
    commitments = task.commitments[phase].get(expert, {})
    assigned = state.assigned_edges(expert, task)
    groups = None
    if state.comparison.records_groups:  # the schema requires them then (exact: only under no_quorum)
        reason = groups_error(entry["groups"], commitments, assigned)
        _require(reason is None, tx, f"expert {expert}: {reason}")
        groups = [tuple(group) for group in entry["groups"]]
    split = state.undisputed_split(expert, task, phase, groups)
    _require(split is None, tx, f"expert {expert}: {split}: the sample must be disputed (escalated to every "
                                "edge) before it is decided")
    if groups is not None:
        verdict = grouped_verdict(state.rule, commitments, assigned, groups)
        reason = grouped_decision_error(verdict, commitments, entry)
    else:
        verdict = verdict_of(state.rule, commitments, assigned)
        reason = decision_error(state.rule, verdict, commitments, entry)
    _require(reason is None, tx, str(reason))
    return verdict, entry["cid"] if entry["status"] == "accepted" else None


def _accept(state: LedgerState, tx: Transaction, phase: str) -> None:
    """The validators' decision for every expert of the task in ``phase``, checked against the rule."""
    _from_validator(state, tx)
    task = _task(state, tx)
    _require(not task.verdicts[phase], tx, f"{phase}s of this task are already decided")
    if phase == "update":
        _require(task.gate_updated, tx, "update acceptance before the gate update")
        expected = [e for e, cid in sorted(task.accepted_cids["result"].items()) if cid is not None]
    else:
        _require(task.counts is not None, tx, "acceptance before activation")
        expected = task.activated()
    entries = _entries(tx, "decisions")
    _require([entry["expert"] for entry in entries] == expected, tx,
             f"decisions must cover exactly experts {expected}")
    allowed = {"task_id", "decisions", "output_cid"} if phase == "result" else {"task_id", "decisions"}
    _require(set(tx.payload) == allowed, tx, f"payload must hold exactly {sorted(allowed)}")
    output_cid = _field(tx, "output_cid", str) if phase == "result" else None
    decided = [(entry, *_decide_entry(state, tx, task, phase, entry)) for entry in entries]
    economics = state.economics
    reward = economics.reward if economics is not None else 0
    task.output_cid = output_cid if phase == "result" else task.output_cid
    for entry, verdict, accepted_cid in decided:
        expert = entry["expert"]
        task.verdicts[phase][expert] = verdict
        task.accepted_cids[phase][expert] = accepted_cid
        if accepted_cid is not None:
            for edge in verdict.supporters:
                state.edge_records[edge].accepted += 1
                if state.balances:
                    state.balances[edge].earned += reward
                if state.streaks:
                    state.streaks[edge] += 1
            if phase == "update":
                state.expert_cids[expert] = accepted_cid
    outcome = {"task": task.task_id, "phase": phase, "output_cid": output_cid,
               "decisions": [[entry["expert"], entry["status"], cid] for entry, _, cid in decided]}
    state.results_root = sha256_hex(bytes.fromhex(state.results_root) + canonical_json(outcome))


def apply_acceptance(state: LedgerState, tx: Transaction) -> None:
    _accept(state, tx, "result")


def apply_update_acceptance(state: LedgerState, tx: Transaction) -> None:
    _accept(state, tx, "update")


def apply_misbehaviour(state: LedgerState, tx: Transaction) -> None:
    """Records against one edge in one phase, each with its evidence: the digest it committed
    outside the accepted group (``dissent``), or nothing at all (``withheld``)."""
    _from_validator(state, tx)
    task = _task(state, tx)
    phase = _field(tx, "phase", str)
    _require(phase in PHASES, tx, f"phase must be one of {PHASES}")
    edge = _field(tx, "edge", str)
    _require(edge in state.edge_records, tx, "accused edge is not enrolled")
    entries = _entries(tx, "records")
    for entry in entries:
        expert = entry["expert"]
        verdict = task.verdicts[phase].get(expert)
        _require(verdict is not None, tx, f"expert {expert}: misbehaviour before the verdict")
        _require((edge, expert, phase) not in task.accusations, tx, f"expert {expert}: already recorded")
        status = status_of(verdict, task.accepted_cids[phase][expert])
        reason = accusation_error(edge, entry, verdict, status, task.commitments[phase].get(expert, {}))
        _require(reason is None, tx, str(reason))
    record = state.edge_records[edge]
    economics = state.economics
    for entry in entries:
        task.accusations.add((edge, entry["expert"], phase))
        if state.streaks:
            state.streaks[edge] = 0  # accused: checked by the full sample until it earns trust again
        if entry["reason"] == "withheld":
            record.withheld += 1
        else:
            record.dissent += 1
            if economics is not None:
                state.balances[edge].slash(economics.slash)  # proven: the evidence is on the ledger


def apply_dispute(state: LedgerState, tx: Transaction) -> None:
    """The validators escalate experts whose sample is split or incomplete to every edge, in this phase
    of this task and for the rest of the task. The evidence is the sample's own commitments: a sampled
    edge that committed nothing, or answers that differ (under a grouping comparison, the recorded groups
    of the sample, which the re-executor and audit re-derive from the objects)."""
    _from_validator(state, tx)
    task = _task(state, tx)
    phase = _field(tx, "phase", str)
    _require(phase in PHASES, tx, f"phase must be one of {PHASES}")
    _require(state.assignment.escalates, tx, f"assignment {state.assignment.name} has no disputes")
    _require(not task.verdicts[phase], tx, f"{phase}s of this task are already decided")
    if phase == "update":
        _require(task.gate_updated, tx, "update dispute before the gate update")
    else:
        _require(task.counts is not None, tx, "dispute before activation")
    for entry in _entries(tx, "disputes"):
        expert = entry["expert"]
        _activated_expert(state, tx, task, expert)
        if phase == "update":
            _require(task.accepted_cids["result"].get(expert) is not None, tx,
                     f"expert {expert} had no accepted result to update from")
        _require(expert not in task.escalated, tx, f"expert {expert} is already escalated to every edge")
        sample = state.sampled_edges(expert, task)
        _require(len(sample) < len(state.task_edges(task)), tx, f"expert {expert}: its sample is already every edge")
        commitments = task.commitments[phase].get(expert, {})
        groups = None
        if "groups" in entry:
            reason = groups_error(entry["groups"], commitments, sample)
            _require(reason is None, tx, f"expert {expert}: {reason}")
            groups = [tuple(group) for group in entry["groups"]]
        _require(sample_split(commitments, sample, groups) is not None, tx,
                 f"expert {expert}: its sample is unanimous: nothing to dispute")
    for entry in tx.payload["disputes"]:
        task.escalated[entry["expert"]] = phase


def apply_gate_update(state: LedgerState, tx: Transaction) -> None:
    _from_validator(state, tx)
    task = _task(state, tx)
    _require(task.kind == "train", tx, "gate updates only in training tasks")
    _require(not task.gate_updated, tx, "gate already updated for this task")
    _require(task.counts is not None and set(task.verdicts["result"]) == set(task.activated()), tx,
             "gate update before every activated expert was decided")
    loss = tx.payload.get("loss")
    _require(isinstance(loss, float | int) and not isinstance(loss, bool), tx, "loss must be a number")
    gradients = _field(tx, "gradient_cids", dict)
    accepted = {str(e) for e, cid in task.accepted_cids["result"].items() if cid is not None}
    _require(set(gradients) == accepted, tx, "gradient_cids must cover exactly the accepted experts")
    state.gate_cid = _field(tx, "gate_cid", str)
    task.gate_updated = True


def apply_generation_chunk(state: LedgerState, tx: Transaction) -> None:
    """One verified chunk of a generation (``ledger/generation.py``): in order within its generation, every
    disputed call's evidence holding, every record against an edge what that evidence shows; a dissent is slashed
    where the run has stake."""
    _from_validator(state, tx)
    generation, chunk = tx.payload["generation"], tx.payload["chunk"]
    expected = state.generations.get(generation, 0)
    _require(chunk == expected, tx, f"generation {generation!r}: chunk {chunk}, expected {expected}")
    _require(tx.payload["checked"] <= tx.payload["calls"], tx, "more calls checked than made")
    disputes = {entry["slot"]: entry for entry in tx.payload["disputes"]}
    _require(len(disputes) == len(tx.payload["disputes"]), tx, "a slot disputed twice")
    for entry in disputes.values():
        _require(entry["slot"] < len(state.expert_cids), tx, f"no expert slot {entry['slot']}")
        reason = dispute_error(generation, chunk, entry, slot_edges(state.fleet, entry["slot"], state.edges))
        _require(reason is None, tx, str(reason))
    records = tx.payload["records_against"]
    _require(len({(r["edge"], r["slot"]) for r in records}) == len(records), tx, "an edge recorded twice in a slot")
    for entry in records:
        _require(entry["edge"] in state.edge_records, tx, "accused edge is not enrolled")
        reason = record_error(entry, disputes)
        _require(reason is None, tx, str(reason))
    state.generations[generation] = chunk + 1
    state.unsettled[generation] = chunk_facts(tx.payload)
    state.generated_tokens += tx.payload["tokens"]
    economics = state.economics
    for entry in records:
        record = state.edge_records[entry["edge"]]
        if entry["reason"] == "withheld":
            record.withheld += 1
        else:
            record.dissent += 1
            if economics is not None:
                state.balances[entry["edge"]].slash(economics.slash)  # proven: the evidence is on the ledger


def apply_settlement(state: LedgerState, tx: Transaction) -> None:
    """What a sealed chunk's payers pay and its edges and validator earn (``ledger/payments.py``)."""
    _from_validator(state, tx)
    pricing = pricing_of(state._genesis)
    _require(pricing is not None, tx, "this session takes no payments")
    assert pricing is not None
    generation = tx.payload["generation"]
    reason = settlement_error(pricing, tx.payload, state.unsettled.get(generation), state.payments, state.edges)
    _require(reason is None, tx, str(reason))
    del state.unsettled[generation]
    settle(state.payments, tx.payload, tx.sender)


def apply_deposit(state: LedgerState, tx: Transaction) -> None:
    """Units a validator received for a requester's account (``ledger/payments.py``)."""
    _from_validator(state, tx)
    _require(pricing_of(state._genesis) is not None, tx, "this session takes no payments")
    state.payments.setdefault(tx.payload["account"], PaymentAccount()).deposited += tx.payload["amount"]
def apply_quality_verdict(state: LedgerState, tx: Transaction) -> None:
    """One response's quality verdict (``ledger/quality.py``): from a validator, once per response, on chunks of
    its generation already recorded, its median, misjudging list and flag what its scores give; each misjudging
    validator recorded against (not slashed: a heuristic's disagreement is no proof)."""
    _from_validator(state, tx)
    generation = tx.payload["generation"]
    key = response_key(generation, tx.payload["response"])
    _require(key not in state.quality_responses, tx, f"response {tx.payload['response']!r} already has a verdict")
    reason = verdict_error(tx.payload, state.generations.get(generation, 0))
    _require(reason is None, tx, str(reason))
    state.quality_responses.add(key)
    state.quality_verdicts[generation] = state.quality_verdicts.get(generation, 0) + 1
    for validator in tx.payload["verdict"]["misjudging"]:
        state.misjudged[validator] = state.misjudged.get(validator, 0) + 1
def apply_capability(state: LedgerState, tx: Transaction) -> None:
    """An enrolled edge declares what it can hold and run (``ledger/placement.py``): it is active from now on."""
    reason = capability_error(tx.sender, state.edges)
    _require(reason is None, tx, str(reason))
    payload = tx.payload
    state.fleet.declarations[tx.sender] = Declaration(payload["memory"], payload["profile"],
                                                      float(payload["throughput"]))
    state.fleet.declared = True


def apply_departure(state: LedgerState, tx: Transaction) -> None:
    """An active edge leaves (its own transaction) or is recorded gone (a validator's)."""
    edge = tx.payload["edge"]
    reason = departure_error(tx.sender, edge, state.validators, state.fleet)
    _require(reason is None, tx, str(reason))
    del state.fleet.declarations[edge]


def apply_placement_tx(state: LedgerState, tx: Transaction) -> None:
    """A validator records the placement the rule gives over the active declarations (``ledger/placement.py``)."""
    _from_validator(state, tx)
    reason = placement_error(tx.payload, state.fleet, len(state.expert_cids))
    _require(reason is None, tx, str(reason))
    apply_placement(state.fleet, tx.payload)


HANDLERS: Mapping[str, Callable[[LedgerState, Transaction], None]] = {
    "genesis": apply_genesis,
    "task": apply_task,
    "activation": apply_activation,
    "commitment": apply_commitment,
    "acceptance": apply_acceptance,
    "expert_update": apply_expert_update,
    "update_acceptance": apply_update_acceptance,
    "misbehaviour": apply_misbehaviour,
    "dispute": apply_dispute,
    "gate_update": apply_gate_update,
    "generation_chunk": apply_generation_chunk,
    "settlement": apply_settlement,
    "deposit": apply_deposit,
    "quality_verdict": apply_quality_verdict,
    "capability": apply_capability,
    "departure": apply_departure,
    "placement": apply_placement_tx,
}


def _limits(state: LedgerState) -> Limits:
    """The schema's bounds: the run's N and M once the genesis fixed them."""
    if state.genesis is None:
        return Limits()
    return Limits(experts=len(state.expert_cids), edges=len(state.edges), grouped=state.comparison.records_groups)


def apply_transaction(state: LedgerState, tx: Transaction) -> None:
    """Apply one transaction to ``state`` in place, or raise InvalidTransaction changing nothing.

    The payload must first match its kind's exact schema (``ledger/schemas.py``). Every handler
    runs all its guard clauses before its first mutation, so a rejected transaction leaves the
    state exactly as it was.
    """
    _require(tx.kind in HANDLERS, tx, "unknown kind")
    reason = payload_error(tx.kind, tx.payload, _limits(state), tx_payload_size(tx))
    _require(reason is None, tx, f"schema: {reason}")
    expected = state.next_nonce(tx.sender)
    _require(tx.nonce == expected, tx, f"nonce {tx.nonce} from {tx.sender[:8]}, expected {expected}")
    if tx.kind != "genesis":
        _require(state.genesis is not None, tx, "no genesis recorded yet")
    HANDLERS[tx.kind](state, tx)
    state.nonces[tx.sender] = expected


# ---------------------------------------------------------------- blocks


def task_incomplete(task: TaskState) -> str | None:
    """Why ``task`` cannot be sealed yet, or None when its round is complete."""
    if task.counts is None:
        return f"task {task.task_id} has no activation"
    undecided = [e for e in task.activated() if e not in task.verdicts["result"]]
    if undecided:
        return f"task {task.task_id}: experts {undecided} undecided"
    if task.kind == "train":
        if not task.gate_updated:
            return f"task {task.task_id}: no gate update"
        pending = [e for e, cid in task.accepted_cids["result"].items()
                   if cid is not None and e not in task.verdicts["update"]]
        if pending:
            return f"task {task.task_id}: updates of experts {pending} undecided"
    return None


def begin_block(state: LedgerState) -> LedgerState:
    """A working copy for the next block: the previous block's tasks are dropped (and so not copied)."""
    without_tasks = copy.copy(state)
    without_tasks.tasks = {}
    without_tasks.unsettled = {}  # a settlement names a chunk of its own block
    return copy.deepcopy(without_tasks)


def finish_block(state: LedgerState, height: int) -> None:
    """Check that every task in the block is complete and advance the height."""
    for task in state.tasks.values():
        reason = task_incomplete(task)
        if reason is not None:
            raise InvalidBlock(height, reason)
    state.height = height


def apply_block(state: LedgerState, block: Block) -> LedgerState:
    """The state after ``block`` (a new object), or InvalidBlock/InvalidTransaction."""
    height = block.header.height
    if height != state.height + 1:
        raise InvalidBlock(height, f"expected height {state.height + 1}")
    if not block.header.state_root:
        raise InvalidBlock(height, "the header has no state root (every sealed block carries one)")
    working = begin_block(state)
    for tx in block.transactions:
        apply_transaction(working, tx)
    finish_block(working, height)
    if block.header.state_root != state_root(working):
        raise InvalidBlock(height, "state root differs from the replayed state")
    working.head = block_hash(block)
    return working
