"""One edge's work handler: a work item of step 2 or 5 in, the edge's signed answer out; an upload request in,
the requested objects in the store.

Owns the edge's side of steps 2 and 5 for every host. The in-process gateway
(:class:`~bmoe.protocol.edges.InProcessEdges`) and the network edge (:class:`~bmoe.net.edge.node.EdgeNode`)
hand the same :class:`WorkItem` to the same :class:`WorkHandler`, so they produce the same bytes;
they differ only in transport. Step 2 decodes the task and activation and computes every assigned
expert (``EdgeWorker.compute``), keeping the inputs; step 5 backpropagates the validators' output
gradients through the forward passes it kept (``EdgeWorker.update``). A dispute sends an edge more work
of the same task (``escalation``): it keeps what it computed, and an update of an expert it never ran
forward first runs that forward pass from the task and activation the item names. Answers are committed
before their bytes are stored: after a phase the validators ask for the objects they need (``upload``), and
the edge uploads those of the current task it holds (``EdgeWorker.upload``); one it does not hold it skips.

Must not know how the item arrived (a call or signed HTTP), where the signer's next nonce comes
from, or when the process's runtime starts a round (``ExpertRuntime.new_round``: a runtime may
serve several edges, so its host decides).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bmoe.edge.runtime import TaskInputs
from bmoe.edge.worker import EdgeWorker
from bmoe.ledger.transactions import Transaction
from bmoe.moe.payloads import decode_gradient
from bmoe.storage import BlobStore

PHASE_RESULT = "result"  # step 2: expert results, answered by a commitment
PHASE_UPDATE = "update"  # step 5: expert updates, answered by an expert_update
PHASE_UPLOAD = "upload"  # after step 2 or 5: upload the committed objects asked for; answered by nothing


@dataclass(frozen=True)
class WorkItem:
    """One edge's part of a step: what to compute, for which task, with which experts."""

    phase: str
    round_index: int
    task_id: str
    train: bool
    experts: list[int]  # the experts assigned to this edge
    expert_cids: list[str]  # the ledger's current CID of every expert
    task_cid: str = ""  # phase result; phase update when escalated (to compute forward passes it lacks)
    activation_cid: str = ""  # as task_cid
    gradient_cids: dict[int, str] | None = None  # phase update: expert -> CID of dL/d(output)
    lr: float = 0.0  # phase update
    escalation: bool = False  # more work of the same task and phase: disputed experts escalated to this edge
    upload_cids: list[str] | None = None  # phase upload: the committed objects to upload


def upload_item(task_id: str, cids: list[str]) -> WorkItem:
    """An upload request: store the objects of ``cids`` (committed for task ``task_id``) that the edge holds."""
    return WorkItem(PHASE_UPLOAD, 0, task_id, False, [], [], upload_cids=list(cids))


class WorkHandler:
    """An edge's answers to its work items; keeps step 2's inputs for step 5 of the same task."""

    def __init__(self, worker: EdgeWorker, store: BlobStore, num_experts: int) -> None:
        self.worker = worker
        self.store = store  # where the validators' gradients are read
        self.num_experts = num_experts
        self._inputs: TaskInputs | None = None
        self.last_compute_s = 0.0  # the last item's measured compute (forward passes or SGD steps)
        self.last_uploaded: list[str] = []  # the CIDs the last upload request sent

    @property
    def address(self) -> str:
        return self.worker.address

    def handle(self, item: WorkItem) -> Transaction | None:
        """The signed commitment / expert update answering ``item``, or None (nothing to send).
        ``last_compute_s`` is then the compute time it took, also when it raised. An upload request
        (phase ``upload``) stores the objects it names that the edge holds and answers None."""
        if item.phase == PHASE_UPLOAD:
            self.last_compute_s = 0.0
            self.last_uploaded = self.upload(item.upload_cids or [])
            return None
        if item.phase == PHASE_RESULT and not self._same_task(item):
            self.worker.begin_task()
        before = self.worker.busy_seconds
        try:
            txs = self._results(item) if item.phase == PHASE_RESULT else self._updates(item)
        finally:
            self.last_compute_s = max(0.0, self.worker.busy_seconds - before)
        return txs[0] if txs else None

    def upload(self, cids: list[str]) -> list[str]:
        """Upload the objects of ``cids`` this edge committed for its current task; the CIDs it sent."""
        return self.worker.upload(cids)

    def _same_task(self, item: WorkItem) -> bool:
        return item.escalation and self._inputs is not None and self._inputs.task_id == item.task_id

    def _load_inputs(self, item: WorkItem) -> TaskInputs:
        runtime = self.worker.runtime

        def load() -> TaskInputs:
            return runtime.task_inputs(item.task_id, item.task_cid, item.activation_cid,
                                       lambda t, a: runtime.decode_task(t, a, self.num_experts))

        inputs = load()
        if any(expert not in inputs.groups for expert in item.experts):  # rows pushed for other experts only
            runtime.drop_task(item.task_cid, item.activation_cid)
            inputs = load()
        return inputs

    def _results(self, item: WorkItem) -> list[Transaction]:
        self._inputs = self._load_inputs(item)
        return self.worker.compute(item.round_index, self._inputs, item.experts, item.expert_cids, item.train)

    def _gradient(self, cid: str) -> torch.Tensor:
        return self.worker.runtime.gradient(cid, lambda: decode_gradient(self.store.get(cid)))

    def _updates(self, item: WorkItem) -> list[Transaction]:
        if item.escalation and not self._same_task(item):
            self.worker.begin_task()
            self._inputs = self._load_inputs(item)  # escalated to an update without its forward pass here
        if self._inputs is None or self._inputs.task_id != item.task_id:
            return []  # no forward pass of this task here (restarted, or missed step 2)
        mine = {e: cid for e, cid in (item.gradient_cids or {}).items() if e in item.experts}
        gradients = {e: (cid, self._gradient(cid)) for e, cid in mine.items()}
        return self.worker.update(item.round_index, self._inputs, gradients, item.expert_cids, item.lr,
                                  forward_missing=item.escalation)
