"""The edge worker: downloads a task and its activated experts, computes, commits, updates.

An edge signs what it sends. Its behaviour (honest or an attack) may tamper with the weights it
computes with, tamper with its outputs, or withhold; the worker itself is the same for all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bmoe.edge.behaviour import AttackContext, EdgeBehaviour
from bmoe.edge.runtime import ExpertRuntime, Forward, TaskInputs, weights_bytes_and_cid
from bmoe.ledger.node import Signer
from bmoe.ledger.transactions import Transaction
from bmoe.moe.payloads import encode_result
from bmoe.storage import BlobStore, cid_of, digest_of


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

    @property
    def address(self) -> str:
        return self.signer.address

    def _context(self, round_index: int, expert: int) -> AttackContext:
        return AttackContext(round_index, expert, self.index, self.run_seed, self.collude)

    def compute(self, round_index: int, task: TaskInputs, experts: list[int],
                expert_cids: list[str], train: bool) -> list[Transaction]:
        """Step 2: compute every expert in ``experts``; one signed commitment of each result's
        (digest, CID), or nothing when the edge withholds everything."""
        self._forwards = {}
        results = []
        for expert in experts:
            ctx = self._context(round_index, expert)
            if self.behaviour.withholds(ctx):
                continue
            cid = expert_cids[expert]
            weights = self.runtime.weights(cid)
            tampered = self.behaviour.tamper_weights(ctx, weights)
            if tampered is not None:
                weights = tampered
                cid = weights_bytes_and_cid(tampered)[1]
            forward = self.runtime.forward(cid, weights, task, expert, train)
            self._forwards[expert] = forward
            output = self.behaviour.tamper_output(ctx, forward.output.detach())
            data = encode_result(forward.output if output is None else output)
            self.store.put(data)
            results.append({"expert": expert, "digest": digest_of(data), "cid": cid_of(data)})
        if not results:
            return []
        return [self.signer.sign("commitment", {"task_id": task.task_id, "results": results})]

    def update(self, round_index: int, task: TaskInputs, gradients: dict[int, tuple[str, torch.Tensor]],
               expert_cids: list[str], lr: float) -> list[Transaction]:
        """Step 5: one SGD step per expert it computed, from the validators' output gradients."""
        updates: list[dict[str, object]] = []
        for expert, (grad_cid, grad) in sorted(gradients.items()):
            forward = self._forwards.get(expert)
            if forward is None or self.behaviour.withholds(self._context(round_index, expert)):
                continue
            data, cid = self.runtime.update(forward, grad_cid, grad, lr)
            self.store.put(data)
            updates.append({"expert": expert, "base_cid": expert_cids[expert], "digest": digest_of(data),
                            "cid": cid})
        self._forwards = {}
        if not updates:
            return []
        return [self.signer.sign("expert_update", {"task_id": task.task_id, "updates": updates})]
