"""How the round reaches its edges: the work it hands out and the signed transactions it gets back.

Steps 2 and 5 of a round need every assigned edge's commitments. :class:`EdgeGateway` is that seam:
``InProcessEdges`` calls the edge workers directly (the simulator and every test), a network gateway
posts the same work to edge processes and collects what arrives before a timeout (the deployment).
Either way an edge that does not answer is just absent from the returned transactions: the ledger
records it as withheld.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bmoe.edge.runtime import ExpertRuntime, TaskInputs
from bmoe.edge.worker import EdgeWorker
from bmoe.ledger.transactions import Transaction
from bmoe.moe.payloads import decode_gradient, decode_task_for_edge
from bmoe.storage import BlobStore


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


@dataclass(frozen=True)
class UpdateWork:
    """Step 5: one SGD step of each accepted expert, from the validators' output gradients."""

    round_index: int
    task_id: str
    gradient_cids: dict[int, str]  # expert -> CID of dL/d(output)
    assignments: dict[str, list[int]]
    expert_cids: list[str]
    lr: float


class EdgeGateway(Protocol):
    def results(self, work: ResultWork) -> list[Transaction]: ...

    def updates(self, work: UpdateWork) -> list[Transaction]: ...

    def busiest_seconds(self) -> float:
        """The busiest edge's compute time in the last round (edges work in parallel)."""
        ...

    def honest(self) -> set[str] | None:
        """Edges known to be honest (the simulator knows), else None."""
        ...

    def resync(self, nonces: Mapping[str, int]) -> None:
        """Continue every edge's signing from the sealed state's nonces."""
        ...


@dataclass
class InProcessEdges:
    """The edges as objects in this process, sharing (or not) a compute runtime."""

    edges: list[EdgeWorker]
    runtimes: list[ExpertRuntime]
    store: BlobStore
    num_experts: int
    _inputs: dict[str, TaskInputs] = field(default_factory=dict)
    _active: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_address = {edge.address: edge for edge in self.edges}

    def edge(self, address: str) -> EdgeWorker:
        return self._by_address[address]

    def results(self, work: ResultWork) -> list[Transaction]:
        for runtime in self.runtimes:
            runtime.new_round()
        self._inputs, self._active = {}, list(work.assignments)
        txs = []
        for address, experts in work.assignments.items():
            edge = self.edge(address)
            inputs = edge.runtime.task_inputs(work.task_id, work.task_cid, work.activation_cid,
                                              lambda t, a: decode_task_for_edge(t, a, self.num_experts))
            self._inputs[address] = inputs
            txs.extend(edge.compute(work.round_index, inputs, experts, work.expert_cids, work.train))
        return txs

    def updates(self, work: UpdateWork) -> list[Transaction]:
        gradients = {e: (cid, decode_gradient(self.store.get(cid))) for e, cid in work.gradient_cids.items()}
        txs = []
        for address, experts in work.assignments.items():
            mine = {e: gradients[e] for e in experts if e in gradients}
            txs.extend(self.edge(address).update(work.round_index, self._inputs[address], mine, work.expert_cids,
                                                 work.lr))
        return txs

    def busiest_seconds(self) -> float:
        return max((self.edge(address).busy_seconds for address in self._active), default=0.0)

    def honest(self) -> set[str] | None:
        return {edge.address for edge in self.edges if not edge.behaviour.malicious}

    def resync(self, nonces: Mapping[str, int]) -> None:
        for edge in self.edges:
            edge.signer.next_nonce = nonces.get(edge.address, -1) + 1
