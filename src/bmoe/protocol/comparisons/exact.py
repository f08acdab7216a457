"""What a re-executing replica accepts under the ``exact`` comparison (and ``integer``): the same bytes.

The replica's recomputed objects must be byte for byte the recorded ones, so each check compares CIDs
(the activation, the MoE output, the gate, the gradients) or values (the loss). The ledger groups the
committed digests, so nothing is grouped from bytes here.

Must not know the ledger's transactions: it compares recomputed objects with a payload's fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from bmoe.moe.gate import Routing
from bmoe.moe.payloads import encode_result
from bmoe.protocol.comparisons.checks import TensorChecks, require_same
from bmoe.protocol.gate_step import Activation, GateUpdate
from bmoe.storage import BlobStore, cid_of
from bmoe.verify.comparison import Exact


@dataclass(frozen=True)
class ExactChecks(TensorChecks):
    comparison: Exact

    def check_activation(self, store: BlobStore, activation_cid: str, replica: Activation,
                         num_experts: int) -> tuple[Routing, dict[int, torch.Tensor]]:
        require_same("activation_cid", cid_of(replica.data), activation_cid)
        return replica.routing, replica.groups

    def check_output(self, store: BlobStore, output_cid: str, logits: torch.Tensor) -> None:
        require_same("output_cid", cid_of(encode_result(logits)), output_cid)

    def check_gate_update(self, store: BlobStore, update: GateUpdate, payload: Mapping[str, Any]) -> None:
        require_same("loss", update.loss, payload.get("loss"))
        require_same("gate_cid", cid_of(update.gate_data), payload.get("gate_cid"))
        expected = {str(e): cid_of(data) for e, (data, _) in update.gradients.items()}
        require_same("gradient_cids", expected, payload.get("gradient_cids"))
