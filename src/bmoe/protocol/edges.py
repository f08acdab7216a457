"""How the round reaches its edges: the work it hands out and the signed transactions it gets back.

Steps 2 and 5 of a round need every assigned edge's commitments; a dispute hands the same step's
disputed experts to more edges (``escalation``) within the round. Edges commit first and upload on
demand: after a phase's commitments the round asks, through :meth:`EdgeGateway.uploads`, for exactly the
objects it needs, each from one edge that committed it. :class:`EdgeGateway` is that seam:
``InProcessEdges`` hands each edge's :class:`~bmoe.edge.work.WorkItem` to its
:class:`~bmoe.edge.work.WorkHandler` directly (the simulator and every test), a network gateway
posts the same work to edge processes, whose ``EdgeNode`` runs the same handler, and collects what
arrives before a timeout (the deployment). Either way an edge that does not answer is just absent
from the returned transactions: the ledger records it as withheld.

The simulator's oracle lives here, not in the round: in-process, the gateway knows which edges
behave honestly, so it fails loudly (:class:`HonestDisagreement`) when they split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bmoe.edge.runtime import ExpertRuntime
from bmoe.edge.work import PHASE_RESULT, PHASE_UPDATE, WorkHandler, WorkItem, upload_item
from bmoe.edge.worker import EdgeWorker
from bmoe.ledger.state import LedgerState
from bmoe.ledger.transactions import Transaction
from bmoe.storage import BlobStore
from bmoe.verify.comparison import HonestDisagreement


@dataclass(frozen=True)
class ResultWork:
    """Step 2: compute these experts of this task (each edge its ``assignments``)."""

    round_index: int
    task_id: str
    task_cid: str
    activation_cid: str
    assignments: dict[str, list[int]]  # edge address -> experts
    expert_cids: list[str]
    train: bool
    escalation: bool = False  # disputed experts, escalated to the edges that were not sampled for them

    def item(self, address: str) -> WorkItem:
        """This edge's part of the work."""
        return WorkItem(PHASE_RESULT, self.round_index, self.task_id, self.train, list(self.assignments[address]),
                        list(self.expert_cids), task_cid=self.task_cid, activation_cid=self.activation_cid,
                        escalation=self.escalation)


@dataclass(frozen=True)
class UpdateWork:
    """Step 5: one SGD step of each accepted expert, from the validators' output gradients."""

    round_index: int
    task_id: str
    gradient_cids: dict[int, str]  # expert -> CID of dL/d(output)
    assignments: dict[str, list[int]]
    expert_cids: list[str]
    lr: float
    task_cid: str = ""  # escalation only: where an edge without the forward pass computes it from
    activation_cid: str = ""

    @property
    def escalation(self) -> bool:
        return bool(self.task_cid)

    def item(self, address: str) -> WorkItem:
        """This edge's part of the work (the handler keeps the gradients of its own experts)."""
        return WorkItem(PHASE_UPDATE, self.round_index, self.task_id, True, list(self.assignments[address]),
                        list(self.expert_cids), gradient_cids=dict(self.gradient_cids), lr=self.lr,
                        task_cid=self.task_cid, activation_cid=self.activation_cid, escalation=self.escalation)


class EdgeGateway(Protocol):
    def results(self, work: ResultWork) -> list[Transaction]: ...

    def updates(self, work: UpdateWork) -> list[Transaction]: ...

    def uploads(self, task_id: str, phase: str, requests: Mapping[str, list[str]]) -> None:
        """Each edge of ``requests`` uploads the objects of its CIDs that it committed in ``phase`` of task
        ``task_id`` and holds; returns when they answered (or, over a network, at the timeout). An edge may
        upload nothing: the round reads the store to see what arrived."""
        ...

    def busiest_seconds(self) -> float:
        """The busiest edge's compute time in the last round (edges work in parallel)."""
        ...

    def total_seconds(self) -> float:
        """The sum of every edge's compute time in the last round: the work a deployment pays for."""
        ...

    def resync(self, state: LedgerState) -> None:
        """Continue every edge's signing from ``state``'s nonces (``LedgerState.next_nonce``)."""
        ...


class PassThrough:
    """An :class:`EdgeGateway` that hands every call to ``inner``: the base of gateways that watch a
    round (a recorder in the tests, the sampling sweep's honest reference) and override what they watch."""

    def __init__(self, inner: EdgeGateway) -> None:
        self.inner = inner

    def results(self, work: ResultWork) -> list[Transaction]:
        return self.inner.results(work)

    def updates(self, work: UpdateWork) -> list[Transaction]:
        return self.inner.updates(work)

    def uploads(self, task_id: str, phase: str, requests: Mapping[str, list[str]]) -> None:
        self.inner.uploads(task_id, phase, requests)

    def busiest_seconds(self) -> float:
        return self.inner.busiest_seconds()

    def total_seconds(self) -> float:
        return self.inner.total_seconds()

    def resync(self, state: LedgerState) -> None:
        self.inner.resync(state)


@dataclass
class InProcessEdges:
    """The edges as objects in this process, sharing (or not) a compute runtime.

    ``check_honest``: raise :class:`HonestDisagreement` when edges that behave honestly commit
    different digests for one expert (exact comparison's conditions broke)."""

    edges: list[EdgeWorker]
    runtimes: list[ExpertRuntime]
    store: BlobStore
    num_experts: int
    check_honest: bool = True

    def __post_init__(self) -> None:
        self._by_address = {edge.address: edge for edge in self.edges}
        self._handlers = {edge.address: WorkHandler(edge, self.store, self.num_experts) for edge in self.edges}
        self._busy: dict[str, float] = {}  # this round: each edge's measured compute, steps 2 and 5

    def edge(self, address: str) -> EdgeWorker:
        return self._by_address[address]

    def results(self, work: ResultWork) -> list[Transaction]:
        if not work.escalation:
            for runtime in self.runtimes:
                runtime.new_round()  # this process's memo starts the round once, for every edge it serves
            self._busy = {}
        return self._answers(work.task_id, work.assignments, work.item, "results")

    def updates(self, work: UpdateWork) -> list[Transaction]:
        return self._answers(work.task_id, work.assignments, work.item, "updates")

    def uploads(self, task_id: str, phase: str, requests: Mapping[str, list[str]]) -> None:
        for address, cids in requests.items():
            handler = self._handlers.get(address)
            if handler is not None and cids:
                handler.handle(upload_item(task_id, cids))

    def _answers(self, task_id: str, assignments: Mapping[str, list[int]], item: Callable[[str], WorkItem],
                 entries: str) -> list[Transaction]:
        txs = []
        for address in assignments:
            handler = self._handlers[address]
            tx = handler.handle(item(address))
            self._busy[address] = self._busy.get(address, 0.0) + handler.last_compute_s
            if tx is not None:
                txs.append(tx)
        if self.check_honest:
            self._check_honest(task_id, txs, entries)
        return txs

    def _check_honest(self, task_id: str, txs: list[Transaction], entries: str) -> None:
        """Fail loudly when edges that behave honestly split on an expert."""
        honest: dict[int, dict[str, str]] = {}
        for tx in txs:
            if not self.edge(tx.sender).behaviour.malicious:
                for entry in tx.payload[entries]:
                    honest.setdefault(int(entry["expert"]), {})[tx.sender] = entry["digest"]
        for expert, digests in sorted(honest.items()):
            if len(set(digests.values())) > 1:
                raise HonestDisagreement(task_id, expert, digests)

    def busiest_seconds(self) -> float:
        return max(self._busy.values(), default=0.0)

    def total_seconds(self) -> float:
        return sum(self._busy.values())

    def resync(self, state: LedgerState) -> None:
        for edge in self.edges:
            edge.signer.next_nonce = state.next_nonce(edge.address)
