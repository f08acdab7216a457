"""A Byzantine validator that tampers with what it records when it builds a block (the paper's
scenario 1: malicious blockchain nodes manipulating the aggregation or the gate).

As the round's proposer it aggregates the accepted results into a manipulated MoE output (so the
block's ``output_cid`` is not what the recorded results give) and, in training, records a gate
update with noise added. Its blocks are well formed and properly signed; only re-execution by the
other validators exposes them.
"""

from __future__ import annotations

import torch

from bmoe.ledger.transactions import Transaction
from bmoe.moe.gate import Routing
from bmoe.protocol.validator import Validator
from bmoe.storage import deserialize_tensors, serialize_tensors


class TamperingValidator(Validator):
    def aggregate(self, routing: Routing, groups: dict[int, torch.Tensor],
                  outputs: dict[int, torch.Tensor]) -> torch.Tensor:
        honest = super().aggregate(routing, groups, outputs)
        return honest.flip(dims=(1,))  # every sample's scores reversed: the output now points elsewhere

    def loss_and_gate_update(self, task_id: str, routing: Routing, groups: dict[int, torch.Tensor],
                             outputs: dict[int, torch.Tensor], y: torch.Tensor, lr: float,
                             balance: float) -> tuple[float, dict[int, tuple[str, torch.Tensor]], Transaction]:
        loss, gradients, tx = super().loss_and_gate_update(task_id, routing, groups, outputs, y, lr, balance)
        weights, _ = deserialize_tensors(self.store.get(tx.payload["gate_cid"]))
        generator = torch.Generator().manual_seed(len(task_id))
        tampered = {k: v + torch.randn(v.shape, generator=generator) for k, v in sorted(weights.items())}
        payload = {**tx.payload, "gate_cid": self.store.put(serialize_tensors(tampered))}
        self.signer.next_nonce = tx.nonce  # re-sign in the same place
        return loss, gradients, self.signer.sign("gate_update", payload)
