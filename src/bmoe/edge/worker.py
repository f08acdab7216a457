"""The edge worker: downloads a task and its activated experts, computes, commits, updates.

An edge signs what it sends. Its behaviour (honest or an attack) may tamper with the weights it
computes with, its outputs or its updated weights, or withhold; the worker itself is the same for all.

Commit first, upload on demand: an edge signs the (digest, CID) of each result and updated weights
without uploading them; it keeps the encoded bytes of its current task in an outbox by CID (dropped
when the next task begins) and uploads the ones the validators ask for (:meth:`EdgeWorker.upload`).
With r replicas agreeing, one copy is uploaded instead of r.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bmoe.edge.behaviour import AttackContext, EdgeBehaviour
from bmoe.edge.runtime import AddressedWeights, Encoded, ExpertRuntime, Forward, TaskInputs
from bmoe.ledger.node import Signer
from bmoe.ledger.transactions import Transaction
from bmoe.moe.payloads import encode_result
from bmoe.storage import BlobStore, deserialize_tensors, serialize_tensors


@dataclass
class EdgeWorker:
    """One edge: its index, signer, behaviour, compute runtime and the store it uploads to."""

    index: int
    signer: Signer
    behaviour: EdgeBehaviour
    runtime: ExpertRuntime
    store: BlobStore
    run_seed: int
    collude: bool

    def __post_init__(self) -> None:
        self._forwards: dict[int, Forward] = {}
        self.busy_seconds = 0.0  # this round: the measured compute time of what this edge computed
        self.outbox: dict[str, bytes] = {}  # CID -> bytes this edge committed for its current task

    @property
    def address(self) -> str:
        return self.signer.address

    def _context(self, round_index: int, expert: int) -> AttackContext:
        return AttackContext(round_index, expert, self.index, self.run_seed, self.collude)

    def begin_task(self) -> None:
        """A new task: the forward passes, compute time and outbox of the last one are dropped. (More work
        of the same task, a dispute's escalation, keeps them.)"""
        self._forwards = {}
        self.busy_seconds = 0.0
        self.outbox = {}

    def _forward(self, ctx: AttackContext, task: TaskInputs, expert: int, expert_cids: list[str],
                 train: bool) -> Forward:
        """The forward pass of ``expert`` on the weights the behaviour computes with, kept for step 5."""
        cid = expert_cids[expert]
        weights = self.runtime.weights(cid)
        tampered = self.behaviour.tamper_weights(ctx, weights)
        if tampered is not None:
            weights = self.runtime.addressed(tampered)
            cid = weights.cid
        forward = self.runtime.forward(cid, weights, task, expert, train)
        self._forwards[expert] = forward
        self.busy_seconds += forward.seconds
        return forward

    def compute(self, round_index: int, task: TaskInputs, experts: list[int],
                expert_cids: list[str], train: bool) -> list[Transaction]:
        """Step 2: compute every expert in ``experts``; one signed commitment of each result's
        (digest, CID), or nothing when the edge withholds everything. The results stay in the outbox
        until asked for (:meth:`upload`). Call :meth:`begin_task` first for a new task."""
        results = []
        for expert in experts:
            ctx = self._context(round_index, expert)
            if self.behaviour.withholds(ctx):
                continue
            forward = self._forward(ctx, task, expert, expert_cids, train)
            output = self.behaviour.tamper_output(ctx, forward.output.detach())
            encoded = forward.encoded_result() if output is None else Encoded.of(encode_result(output))
            self.outbox[encoded.cid] = encoded.data
            results.append({"expert": expert, "digest": encoded.digest, "cid": encoded.cid})
        if not results:
            return []
        return [self.signer.sign("commitment", {"task_id": task.task_id, "results": results})]

    def _tampered_update(self, round_index: int, expert: int, base_cid: str, encoded: Encoded) -> Encoded:
        """The updated weights the behaviour sends instead of ``encoded``, or ``encoded`` itself."""
        if not self.behaviour.malicious or type(self.behaviour).tamper_update is EdgeBehaviour.tamper_update:
            return encoded  # an honest edge, or an attack that keeps the step, sends it as computed (no decoding)
        updated = AddressedWeights(encoded.cid, deserialize_tensors(encoded.data)[0])
        tampered = self.behaviour.tamper_update(self._context(round_index, expert), self.runtime.weights(base_cid),
                                                updated)
        return encoded if tampered is None else Encoded.of(serialize_tensors(tampered))

    def upload(self, cids: list[str]) -> list[str]:
        """Upload the objects of ``cids`` this edge holds in its outbox, unless the store already holds
        them (content-addressed dedup, as an IPFS client asks ``has`` before sending a block); the CIDs
        whose bytes it sent. A CID it does not hold is skipped: never an error."""
        sent = []
        for cid in dict.fromkeys(cids):
            data = self.outbox.get(cid)
            if data is not None and not self.store.has(cid):
                self.store.put(data)
                sent.append(cid)
        return sent

    def update(self, round_index: int, task: TaskInputs, gradients: dict[int, tuple[str, torch.Tensor]],
               expert_cids: list[str], lr: float, forward_missing: bool = False) -> list[Transaction]:
        """Step 5: one SGD step per expert it computed, from the validators' output gradients (the new
        weights go to the outbox, as results do); ``forward_missing`` (an escalated update): first run
        the forward pass of an expert it lacks."""
        updates: list[dict[str, object]] = []
        for expert, (grad_cid, grad) in sorted(gradients.items()):
            ctx = self._context(round_index, expert)
            if self.behaviour.withholds(ctx):
                continue
            forward = self._forwards.get(expert)
            if forward is None and forward_missing:
                forward = self._forward(ctx, task, expert, expert_cids, True)
            if forward is None:
                continue
            encoded, seconds = self.runtime.update(forward, grad_cid, grad, lr)
            self.busy_seconds += seconds
            encoded = self._tampered_update(round_index, expert, expert_cids[expert], encoded)
            self.outbox[encoded.cid] = encoded.data
            updates.append({"expert": expert, "base_cid": expert_cids[expert], "digest": encoded.digest,
                            "cid": encoded.cid})
        if not updates:
            return []
        return [self.signer.sign("expert_update", {"task_id": task.task_id, "updates": updates})]
