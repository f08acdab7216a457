"""Counting, per decision, whether the ledger accepted a manipulated result.

The measurement does not trust the protocol it measures. :class:`HonestReference` wraps a session's
in-process gateway: after the real edges answer a step, a shadow edge that behaves honestly (no
behaviour, no key the ledger knows, its answers never submitted) computes every expert of the step
as an honest edge would, from the same task, activation, expert CIDs and the validators' gradients.
After the round is sealed, :class:`DecisionTally` reads the ledger's verdicts (accepted CID,
supporters) and compares each accepted CID with the shadow's: a different CID is a manipulated result
(or update) the ledger accepted. It also counts, from the policy's own sample (before any dispute),
the decisions whose sampled replicas were all colluders (the event the bound counts) or a majority
of colluders (what the acceptance rule among r replicas alone would let through).

The shadow shares the honest edges' compute runtime: its memo is keyed by content, so an honest
result is computed once whoever asks first, and sharing changes no byte the protocol sees.

Must not change the round: it only observes what the gateway returns and what the ledger sealed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bmoe.edge.behaviour import EdgeBehaviour
from bmoe.edge.work import WorkHandler
from bmoe.edge.worker import EdgeWorker
from bmoe.ledger.keys import derive_identity
from bmoe.ledger.node import Signer
from bmoe.ledger.state import LedgerState, TaskState
from bmoe.ledger.transactions import Transaction
from bmoe.protocol.edges import EdgeGateway, PassThrough, ResultWork, UpdateWork
from bmoe.run.session import Session

PHASES = ("result", "update")
SHADOW_NAME = "sampling-sweep-honest-reference"


class _Discard:
    """The shadow edge's upload target: it keeps nothing (its answers are only compared)."""

    def has(self, cid: str) -> bool:
        return True

    def put(self, data: bytes) -> str:  # pragma: no cover - never reached: has() says every CID is there
        raise AssertionError("the honest reference uploads nothing")


class HonestReference(PassThrough):
    """A gateway that forwards every step to ``inner`` and records, per (task, phase, expert), the CID
    an honest edge computes. Any other gateway method or attribute is forwarded unchanged."""

    def __init__(self, inner: EdgeGateway, session: Session) -> None:
        super().__init__(inner)
        honest = [edge for edge in session.edges if not edge.behaviour.malicious]
        if not honest:
            raise ValueError("the honest reference needs one honest edge's runtime")
        identity = derive_identity(session.config.seed, SHADOW_NAME)
        worker = EdgeWorker(len(session.edges), Signer(identity), EdgeBehaviour(), honest[0].runtime,
                            _Discard(), session.config.seed, False)  # type: ignore[arg-type]
        self.address = identity.address
        self._handler = WorkHandler(worker, session.store, session.config.num_experts)
        self.cids: dict[tuple[str, str, int], str] = {}  # (task, phase, expert) -> the honest answer's CID

    def results(self, work: ResultWork) -> list[Transaction]:
        answers = self.inner.results(work)
        experts = sorted({e for assigned in work.assignments.values() for e in assigned})
        if not getattr(work, "escalation", False):  # a new task (or the same task built again)
            self.forget(work.task_id)
        todo = [e for e in experts if (work.task_id, "result", e) not in self.cids]
        if todo:
            known = [e for (task, phase, e) in self.cids if task == work.task_id and phase == "result"]
            mine = sorted({*known, *todo})  # recompute what it knows too: its forward passes serve step 5
            item = dataclasses.replace(work, assignments={self.address: mine}).item(self.address)
            self._record(work.task_id, "result", self._handler.handle(item), "results")
        return answers

    def updates(self, work: UpdateWork) -> list[Transaction]:
        answers = self.inner.updates(work)
        todo = sorted(e for e in work.gradient_cids if (work.task_id, "update", e) not in self.cids)
        if todo:
            item = dataclasses.replace(work, assignments={self.address: todo}).item(self.address)
            self._record(work.task_id, "update", self._handler.handle(item), "updates")
        return answers

    def _record(self, task_id: str, phase: str, tx: Transaction | None, entries: str) -> None:
        for entry in tx.payload[entries] if tx is not None else []:
            self.cids[(task_id, phase, int(entry["expert"]))] = str(entry["cid"])

    def forget(self, task_id: str) -> None:
        for key in [key for key in self.cids if key[0] == task_id]:
            del self.cids[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class PhaseCounts:
    """One phase's decisions (training results, training updates, or served results)."""

    decisions: int = 0
    accepted: int = 0
    rejected: int = 0
    disputed: int = 0  # decided among more edges than the policy sampled (escalated)
    deciding_edges: int = 0  # edges the decision was taken among, summed (sample, or all M when disputed)
    colluder_samples: int = 0  # the sampled replicas were all colluders
    majority_samples: int = 0  # colluders were a majority of the sampled replicas
    manipulated: int = 0  # accepted, and not the CID an honest edge computes
    unverified: int = 0  # accepted with no honest reference to compare (should stay 0)

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass
class DecisionTally:
    """Counts every sealed decision of a session, by task kind and phase."""

    malicious: frozenset[str]
    counts: dict[str, PhaseCounts] = field(default_factory=dict)  # "train/result", "train/update", "infer/result"

    @staticmethod
    def of(session: Session) -> DecisionTally:
        return DecisionTally(frozenset(edge.address for edge in session.edges if edge.behaviour.malicious))

    def count_block(self, state: LedgerState, reference: HonestReference) -> None:
        """Count the decisions of the tasks of the block just sealed (``state`` is the sealed state)."""
        for task in state.tasks.values():
            for phase in PHASES:
                for expert, verdict in sorted(task.verdicts[phase].items()):
                    self._count(state, task, phase, expert, verdict, reference)
            reference.forget(task.task_id)

    def _count(self, state: LedgerState, task: TaskState, phase: str, expert: int, verdict: Any,
               reference: HonestReference) -> None:
        tally = self.counts.setdefault(f"{task.kind}/{phase}", PhaseCounts())
        sample = state.sampled_edges(expert, task)  # the policy's own sample, before any dispute
        deciding = {*verdict.committed, *verdict.missing}
        bad = sum(address in self.malicious for address in sample)
        accepted = task.accepted_cids[phase].get(expert)
        honest = reference.cids.get((task.task_id, phase, expert))
        tally.decisions += 1
        tally.accepted += accepted is not None
        tally.rejected += accepted is None
        tally.disputed += len(deciding) > len(sample)
        tally.deciding_edges += len(deciding)
        tally.colluder_samples += bad == len(sample)
        tally.majority_samples += 2 * bad > len(sample)
        tally.unverified += accepted is not None and honest is None
        tally.manipulated += accepted is not None and honest is not None and accepted != honest

    def get(self, key: str) -> PhaseCounts:
        return self.counts.get(key, PhaseCounts())


def watch(session: Session) -> tuple[HonestReference, DecisionTally]:
    """Wrap ``session``'s gateway with an honest reference; count each sealed round with the tally."""
    reference = HonestReference(session.participants.gateway, session)
    session.participants.gateway = reference
    return reference, DecisionTally.of(session)
