"""One B-MoE round: the paper's six steps driving publisher, validator, edges and ledger.

Training runs steps 1-6; inference runs 1-3 and 6 (B-MoE, Sec. III):
1. the validator evaluates the gate and records the top-K activation;
2. every assigned edge computes every activated expert and commits (digest, CID), signed;
3. each expert is decided across edges by the acceptance rule; accepted results are aggregated;
4. (train) loss and gate update at the validator, output gradients to the edges;
5. (train) edges update their experts; updates are decided by digest, new CIDs recorded;
6. a block seals it all.
The same function runs both frameworks; they differ only in the genesis (which edges are assigned
an expert, which acceptance rule holds) and in whether blocks are persisted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bmoe.ledger.node import ConsensusStalled, LedgerNode, ProposalRejected, Signer
from bmoe.ledger.transactions import Transaction
from bmoe.moe.payloads import check_task, encode_task
from bmoe.protocol.edges import EdgeGateway, ResultWork, UpdateWork
from bmoe.protocol.validator import Validator
from bmoe.storage import BlobStore
from bmoe.verify.comparison import HonestDisagreement


@dataclass
class RoundTimes:
    """Seconds spent per component of a round (measured, not modelled)."""

    gate: float = 0.0
    compute: float = 0.0
    verify: float = 0.0
    loss: float = 0.0
    update: float = 0.0
    consensus: float = 0.0

    def total(self) -> float:
        return self.gate + self.compute + self.verify + self.loss + self.update + self.consensus


@dataclass
class Traffic:
    """Bytes each edge downloads and uploads in a round (the input of the communication model)."""

    down: dict[str, int] = field(default_factory=dict)
    up: dict[str, int] = field(default_factory=dict)

    def add(self, edge: str, down: int = 0, up: int = 0) -> None:
        self.down[edge] = self.down.get(edge, 0) + down
        self.up[edge] = self.up.get(edge, 0) + up

    @property
    def total(self) -> int:
        return sum(self.down.values()) + sum(self.up.values())

    @property
    def max_edge(self) -> int:
        """The busiest edge's bytes: edges transfer in parallel, so it bounds the round."""
        edges = set(self.down) | set(self.up)
        return max((self.down.get(e, 0) + self.up.get(e, 0) for e in edges), default=0)


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


@dataclass
class RoundParticipants:
    """Everyone taking part, and the per-process compute runtimes the edges use."""

    node: LedgerNode
    store: BlobStore
    publisher: Signer
    validator: Validator
    gateway: EdgeGateway
    num_experts: int
    check_honest_agreement: bool = True
    validators: dict[str, Validator] = field(default_factory=dict)  # by name; PBFT picks the primary's
    primary: Callable[[], str] | None = None  # the current proposer's name (None: ``validator`` proposes)

    def proposer(self) -> Validator:
        return self.validator if self.primary is None else self.validators[self.primary()]

    def resync_nonces(self) -> None:
        """After a rejected proposal: every signer continues from what the ledger has sealed."""
        nonces = self.node.state.nonces
        for signer in [self.publisher, self.validator.signer, *(v.signer for v in self.validators.values())]:
            signer.next_nonce = nonces.get(signer.address, -1) + 1
        self.gateway.resync(nonces)



def publish_task(publisher: Signer, store: BlobStore, round_index: int, x: torch.Tensor, y: torch.Tensor | None,
                 train: bool) -> Transaction:
    """The publisher's part of step 1: the task's samples stored by CID and the signed task."""
    kind = "train" if train else "infer"
    task_cid = store.put(encode_task(x, y if train else None))
    return publisher.sign("task", {"task_id": f"{kind}-{round_index:06d}", "kind": kind, "data_cid": task_cid,
                                   "samples": int(x.shape[0]), "round": round_index})


def run_round(p: RoundParticipants, round_index: int, x: torch.Tensor, y: torch.Tensor | None,
              train: bool, lr: float, balance: float = 0.0, task: Transaction | None = None) -> RoundOutcome:
    """Run one round and seal its block; ``y`` is required when training. ``task`` is the publisher's
    signed task when it came from elsewhere (a publisher process); by default it is made here.

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
    for _ in range(max(1, len(p.validators))):
        try:
            return _run_round_once(p, p.proposer(), task, round_index, x, y, train, lr, balance)
        except ProposalRejected:
            p.node.discard_pending()
            p.resync_nonces()
        except BaseException:
            p.node.discard_pending()  # a failed round leaves nothing pending behind it
            p.resync_nonces()
            raise
    raise ConsensusStalled(f"no proposer could seal round {round_index}")


def _run_round_once(p: RoundParticipants, validator: Validator, task: Transaction, round_index: int,
                    x: torch.Tensor, y: torch.Tensor | None, train: bool, lr: float, balance: float) -> RoundOutcome:
    times = RoundTimes()
    kind = "train" if train else "infer"
    task_id, task_cid = task.payload["task_id"], task.payload["data_cid"]
    clock = time.perf_counter()

    # Step 1: the publisher's task, the gate and the top-K activation.
    p.node.submit(task)
    routing, groups, activation_tx = validator.activate(task_id, x, train)
    p.node.submit(activation_tx)
    activation_cid = activation_tx.payload["activation_cid"]
    clock = _lap(times, "gate", clock)

    # Step 2: every assigned edge computes every activated expert it is assigned.
    state = p.node.working
    expert_cids = list(state.expert_cids)
    assignments: dict[str, list[int]] = {}
    for expert in sorted(groups):
        for address in state.assigned_edges(expert):
            assignments.setdefault(address, []).append(expert)
    traffic = Traffic()
    sizes = _SizeCache(p.store)
    for address, experts in assignments.items():
        traffic.add(address, down=sizes(task_cid) + sizes(activation_cid) + sum(sizes(expert_cids[e]) for e in experts))
    work = ResultWork(round_index, task_id, task_cid, activation_cid, assignments, expert_cids, train)
    for tx in p.gateway.results(work):
        p.node.submit(tx)
        traffic.add(tx.sender, up=sum(sizes(entry["cid"]) for entry in tx.payload["results"]))
    clock = _lap(times, "compute", clock)

    # Step 3: decide each expert, record misbehaviour, aggregate what was accepted.
    if p.check_honest_agreement:
        _check_honest(p, task_id, sorted(groups), "result")
    decided = validator.decide(task_id, "result", {e: int(rows.numel()) for e, rows in groups.items()},
                                 routing, groups)
    for tx in decided.transactions:
        p.node.submit(tx)
    misbehaviour = decided.accusations
    outputs = {e: d.output for e, d in decided.decisions.items() if d.output is not None}
    assert decided.logits is not None
    logits = decided.logits
    clock = _lap(times, "verify", clock)

    loss = None
    if train:
        if y is None:
            raise ValueError("a training round needs labels")
        # Step 4: loss, gate update, gradients for the accepted experts.
        loss, gradients, gate_tx = validator.loss_and_gate_update(task_id, routing, groups, outputs, y, lr,
                                                                         balance)
        p.node.submit(gate_tx)
        clock = _lap(times, "loss", clock)
        # Step 5: the edges update; each update is decided by digest.
        gradient_cids = {e: cid for e, (cid, _) in gradients.items()}
        for address, experts in assignments.items():
            traffic.add(address, down=sum(sizes(gradient_cids[e]) for e in experts if e in gradient_cids))
        for tx in p.gateway.updates(UpdateWork(round_index, task_id, gradient_cids, assignments, expert_cids, lr)):
            p.node.submit(tx)
            traffic.add(tx.sender, up=sum(sizes(entry["cid"]) for entry in tx.payload["updates"]))
        if gradients:
            if p.check_honest_agreement:
                _check_honest(p, task_id, sorted(gradients), "update")
            decided = validator.decide(task_id, "update", {e: int(groups[e].numel()) for e in gradients})
            for tx in decided.transactions:
                p.node.submit(tx)
            misbehaviour += decided.accusations
        clock = _lap(times, "update", clock)

    # Step 6: seal.
    p.node.seal(timestamp=round_index + 1, proposer=validator.signer.identity)
    p.resync_nonces()  # the sealed block may be another proposer's version of this round
    _lap(times, "consensus", clock)
    counts = [int(groups[e].numel()) if e in groups else 0 for e in range(p.num_experts)]
    seal = p.node.last_seal if p.node.seals else None
    edge_seconds = p.gateway.busiest_seconds()
    return RoundOutcome(round_index, kind, logits, loss, len(outputs), len(groups) - len(outputs), counts,
                        misbehaviour, times, traffic, edge_seconds, seal.mine_seconds if seal else 0.0,
                        seal.block_bytes if seal else 0)


class _SizeCache:
    """Object sizes by CID, read once per round."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.known: dict[str, int] = {}

    def __call__(self, cid: str) -> int:
        if cid not in self.known:
            self.known[cid] = self.store.size(cid)
        return self.known[cid]


def _lap(times: RoundTimes, part: str, since: float) -> float:
    now = time.perf_counter()
    setattr(times, part, getattr(times, part) + now - since)
    return now


def _check_honest(p: RoundParticipants, task_id: str, experts: list[int], phase: str) -> None:
    """Fail loudly when edges that behave honestly split: exact comparison's conditions broke."""
    known = p.gateway.honest()
    if known is None:
        return
    for expert in experts:
        committed = p.node.working.tasks[task_id].commitments[phase].get(expert, {})
        honest = {edge: digest for edge, (digest, _) in committed.items() if edge in known}
        if len(set(honest.values())) > 1:
            raise HonestDisagreement(task_id, expert, honest)
