"""One B-MoE round: the paper's six steps driving publisher, validator, edges and ledger.

Training runs steps 1-6; inference runs 1-3 and 6 (B-MoE, Sec. III):
1. the validator evaluates the gate and records the top-K activation;
2. every assigned edge computes every activated expert and commits (digest, CID), signed; the objects
   the validators need are then uploaded, each once (commit first, upload on demand); under a
   sampled policy a split or incomplete sample is disputed and its expert escalated to every edge;
3. each expert is decided across edges by the acceptance rule; accepted results are aggregated;
4. (train) loss and gate update at the validator, output gradients to the edges;
5. (train) edges update their experts; updates are decided by digest, new CIDs recorded;
6. a block seals it all.
The same function runs both frameworks; they differ only in the genesis (which edges are assigned
an expert, which acceptance rule holds) and in whether blocks are persisted.

Must not know how edges are reached (an :class:`~bmoe.protocol.edges.EdgeGateway`: in-process or
over HTTP, both running the edge's one work handler, ``edge/work.py``), what a round costs (a
:class:`~bmoe.protocol.measure.RoundObserver` is told each step) or which edges are honest (only
the in-process gateway, the simulator, knows that).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bmoe.ledger.node import ConsensusStalled, LedgerNode, ProposalRejected, Signer
from bmoe.ledger.state import LedgerState, TaskState
from bmoe.ledger.transactions import Transaction
from bmoe.moe.payloads import check_task, encode_task
from bmoe.protocol.edges import EdgeGateway, ResultWork, UpdateWork
from bmoe.protocol.measure import RoundObserver, RoundTimes, Traffic
from bmoe.protocol.validator import Validator, committed_cids
from bmoe.storage import BlobStore

__all__ = ["RoundObserver", "RoundOutcome", "RoundParticipants", "RoundTimes", "Traffic", "assignments_of", "escalate",
           "publish_task", "run_round", "submit_all", "submit_answers"]


@dataclass
class RoundOutcome:
    round: int
    kind: str
    logits: torch.Tensor  # (B, C) the aggregated MoE output
    loss: float | None
    accepted: int  # experts whose result was accepted
    rejected: int  # activated experts with no accepted result
    counts: list[int]  # samples routed to each expert
    misbehaviour: int
    times: RoundTimes = field(default_factory=RoundTimes)
    traffic: Traffic = field(default_factory=Traffic)
    edge_seconds: float = 0.0  # the busiest edge's measured compute time (edges work in parallel)
    mine_seconds: float = 0.0  # the part of the consensus time spent on proof of work
    block_bytes: int = 0
    edge_total_seconds: float = 0.0  # every edge's measured compute time, summed (what the fleet pays)


@dataclass
class RoundParticipants:
    """Everyone taking part: the ledger node, the store, the signers and how to reach the edges."""

    node: LedgerNode
    store: BlobStore
    publisher: Signer
    validator: Validator
    gateway: EdgeGateway
    num_experts: int
    validators: dict[str, Validator] = field(default_factory=dict)  # by name; PBFT picks the primary's
    primary: Callable[[], str] | None = None  # the current proposer's name (None: ``validator`` proposes)
    refusals: Callable[[], str] | None = None  # why validators refused the last proposals (PBFT), for a stall
    observer: RoundObserver | None = None  # measures every round; kept, as it remembers what each edge holds

    def proposer(self) -> Validator:
        return self.validator if self.primary is None else self.validators[self.primary()]

    def resync_nonces(self) -> None:
        """After a rejected proposal: every signer continues from what the ledger has sealed."""
        sealed = self.node.view()
        for signer in [self.publisher, self.validator.signer, *(v.signer for v in self.validators.values())]:
            signer.next_nonce = sealed.next_nonce(signer.address)
        self.gateway.resync(sealed)


def publish_task(publisher: Signer, store: BlobStore, round_index: int, x: torch.Tensor, y: torch.Tensor | None,
                 train: bool) -> Transaction:
    """The publisher's part of step 1: the task's samples stored by CID and the signed task."""
    kind = "train" if train else "infer"
    task_cid = store.put(encode_task(x, y if train else None))
    return publisher.sign("task", {"task_id": f"{kind}-{round_index:06d}", "kind": kind, "data_cid": task_cid,
                                   "samples": int(x.shape[0]), "round": round_index})


def run_round(p: RoundParticipants, round_index: int, x: torch.Tensor, y: torch.Tensor | None,
              train: bool, lr: float, balance: float = 0.0, task: Transaction | None = None,
              observer: RoundObserver | None = None) -> RoundOutcome:
    """Run one round and seal its block; ``y`` is required when training. ``task`` is the publisher's
    signed task when it came from elsewhere (a publisher process); by default it is made here.
    ``observer`` measures the round (by default ``p.observer``, a :class:`RoundObserver` over ``p.store``
    made at the first round and kept).

    When consensus rejects the block (a PBFT view change voted its proposer out), the round is built
    again, from the same task, by the new proposer; at most once per validator.

    Task data with NaN or inf is refused here, before anything is stored or recorded
    (``NonFiniteValue``); a round that fails later (``RoundDiverged``, say) leaves nothing pending,
    so the next round starts from the sealed state.
    """
    check_task(x, y if train else None)
    if train and y is None:
        raise ValueError("a training round needs labels")
    task = task if task is not None else publish_task(p.publisher, p.store, round_index, x, y, train)
    if observer is None:
        if p.observer is None:
            p.observer = RoundObserver(p.store)
        observer = p.observer
    watch = observer
    for _ in range(max(1, len(p.validators))):
        try:
            return _run_round_once(p, p.proposer(), task, round_index, x, y, train, lr, balance, watch)
        except ProposalRejected:
            p.node.discard_pending()
            p.resync_nonces()
        except BaseException:
            p.node.discard_pending()  # a failed round leaves nothing pending behind it
            p.resync_nonces()
            raise
    why = p.refusals() if p.refusals is not None else ""
    raise ConsensusStalled(f"no proposer could seal round {round_index}" + (f"; validators refused: {why}" if why
                                                                             else ""))


def _run_round_once(p: RoundParticipants, validator: Validator, task: Transaction, round_index: int,
                    x: torch.Tensor, y: torch.Tensor | None, train: bool, lr: float, balance: float,
                    watch: RoundObserver) -> RoundOutcome:
    task_id = task.payload["task_id"]
    watch.begin()

    # Step 1: the publisher's task, the gate and the top-K activation.
    p.node.submit(task)
    routing, groups, activation_tx = validator.activate(task_id, x, train)
    p.node.submit(activation_tx)
    watch.step("gate")

    # Step 2: every assigned edge computes every activated expert it is assigned, and commits.
    state = p.node.pending_view()
    work = ResultWork(round_index, task_id, task.payload["data_cid"], activation_tx.payload["activation_cid"],
                      assignments_of(state, state.tasks[task_id], sorted(groups)), list(state.expert_cids), train)
    watch.work_out(work)
    submit_answers(p, validator, watch, task_id, "result", p.gateway.results(work))
    escalate(p, validator, watch, task_id, "result", sorted(groups),
              lambda extra: dataclasses.replace(work, assignments=extra, escalation=True))
    watch.step("compute")

    # Step 3: decide each expert, record misbehaviour, aggregate what was accepted.
    decided = validator.decide(task_id, "result", {e: int(rows.numel()) for e, rows in groups.items()},
                               routing, groups)
    submit_all(p, decided.transactions)
    misbehaviour = decided.accusations
    outputs = {e: d.output for e, d in decided.decisions.items() if d.output is not None}
    assert decided.logits is not None
    logits = decided.logits
    watch.step("verify")

    loss = None
    if train:
        if y is None:
            raise ValueError("a training round needs labels")
        # Step 4: loss, gate update, gradients for the accepted experts.
        loss, gradients, gate_tx = validator.loss_and_gate_update(task_id, routing, groups, outputs, y, lr, balance)
        p.node.submit(gate_tx)
        watch.step("loss")

        # Step 5: the edges update; each update is decided by digest.
        state = p.node.pending_view()
        update = UpdateWork(round_index, task_id, {e: cid for e, (cid, _) in gradients.items()},
                            assignments_of(state, state.tasks[task_id], sorted(groups)), work.expert_cids, lr)
        watch.work_out(update)
        submit_answers(p, validator, watch, task_id, "update", p.gateway.updates(update))
        escalate(p, validator, watch, task_id, "update", sorted(gradients),
                  lambda extra: dataclasses.replace(update, assignments=extra, task_cid=work.task_cid,
                                                    activation_cid=work.activation_cid))
        if gradients:
            decided = validator.decide(task_id, "update", {e: int(groups[e].numel()) for e in gradients})
            submit_all(p, decided.transactions)
            misbehaviour += decided.accusations
        watch.step("update")

    # Step 6: seal, once every object the block names is durable (a write-behind store wrote them meanwhile).
    p.store.sync()
    watch.step("storage")
    p.node.seal(timestamp=round_index + 1, proposer=validator.signer.identity)
    p.resync_nonces()  # the sealed block may be another proposer's version of this round
    watch.step("consensus")
    watch.sealed(p.node.last_seal if p.node.seals else None, p.gateway.busiest_seconds(), p.gateway.total_seconds())

    counts = [int(groups[e].numel()) if e in groups else 0 for e in range(p.num_experts)]
    return RoundOutcome(round_index, "train" if train else "infer", logits, loss, len(outputs),
                        len(groups) - len(outputs), counts, misbehaviour, watch.times, watch.traffic,
                        watch.edge_seconds, watch.mine_seconds, watch.block_bytes, watch.edge_total_seconds)


def assignments_of(state: LedgerState, task: TaskState, experts: list[int]) -> dict[str, list[int]]:
    """Edge address -> the activated experts the ledger assigns it, in the genesis's order of edges."""
    assignments: dict[str, list[int]] = {}
    for expert in experts:
        for address in state.assigned_edges(expert, task):
            assignments.setdefault(address, []).append(expert)
    return assignments


def escalate(p: RoundParticipants, validator: Validator, watch: RoundObserver, task_id: str, phase: str,
              experts: list[int], more_work: Callable[[dict[str, list[int]]], ResultWork | UpdateWork]) -> None:
    """A dispute, when a sample is split or incomplete: the disputed experts go, in this round, to every
    edge that was not sampled for them, and their answers join the sample's before the decision."""
    dispute = validator.dispute(task_id, phase, experts)
    if dispute is None:
        return
    p.node.submit(dispute)
    state = p.node.pending_view()
    task = state.tasks[task_id]
    extra: dict[str, list[int]] = {}
    for entry in dispute.payload["disputes"]:
        expert = entry["expert"]
        sampled = set(state.sampled_edges(expert, task))  # who already answered: the policy's sample
        for address in state.assigned_edges(expert, task):
            if address not in sampled:
                extra.setdefault(address, []).append(expert)
    more = more_work({address: extra[address] for address in state.edges if address in extra})
    watch.work_out(more)
    answers = p.gateway.results(more) if isinstance(more, ResultWork) else p.gateway.updates(more)
    submit_answers(p, validator, watch, task_id, phase, answers)


def submit_answers(p: RoundParticipants, validator: Validator, watch: RoundObserver, task_id: str, phase: str,
                    answers: list[Transaction]) -> None:
    """Record a phase's signed answers once the objects they name are stored (:func:`_upload_needed`). An
    answer whose object never arrived is not recorded: its edge is withheld, as if it had sent nothing."""
    for tx in answers:
        watch.answer_in(tx)
    lost = _upload_needed(p, validator, watch, task_id, phase, answers)
    recorded = [tx for tx in answers if not lost.intersection(committed_cids(tx))]
    for tx in recorded:
        p.node.submit(tx)
    if len(recorded) < len(answers):
        p.gateway.resync(p.node.pending_view())  # an edge whose answer was dropped signs on from the ledger


def _upload_needed(p: RoundParticipants, validator: Validator, watch: RoundObserver, task_id: str, phase: str,
                   answers: list[Transaction]) -> set[str]:
    """Commit first, upload on demand: every object the answers name that is not stored yet is asked of one
    edge that committed it (:meth:`Validator.needed_objects`); what did not arrive, of the next such edge;
    and so on. Each request goes to all the edges it names at once. Returns the CIDs no edge delivered."""
    holders = validator.needed_objects(answers)
    level = 0
    while holders:
        requests: dict[str, list[str]] = {}
        for cid, edges in holders.items():
            if level < len(edges):
                requests.setdefault(edges[level], []).append(cid)
        if not requests:
            break
        p.gateway.uploads(task_id, phase, requests)
        arrived = validator.stored(cid for cids in requests.values() for cid in cids)
        for address, cids in requests.items():
            watch.uploaded(address, [cid for cid in cids if cid in arrived])
        holders = {cid: edges for cid, edges in holders.items() if cid not in arrived}
        level += 1
    return set(holders)



def submit_all(p: RoundParticipants, txs: list[Transaction]) -> None:
    for tx in txs:
        p.node.submit(tx)
