"""What a re-executing validator on other hardware accepts under the ``tolerance`` comparison, and how
answers are grouped and accepted under it.

A replica recomputes the gate, the aggregation, the loss and the gate update on its own numerics
(a :class:`~bmoe.edge.profiles.NumericProfile`), so its bytes may differ from the proposer's in the
last bits, and a near-tie between the K-th and (K+1)-th expert may even flip. Under ``exact`` that
splits the validators. Under ``tolerance`` the recorded values are *decisions every replica checks
within the bound*, and the chain continues from the recorded objects, never from a replica's own:

- **activation**: each sample's recorded experts must be a top-K of the replica's gate logits within
  the bound (each recorded expert's logit at least the replica's K-th largest minus
  ``result_bound × max(‖logits‖, floor)``), and the recorded weights within the per-sample bound of
  the softmax of the replica's logits at those experts. The recorded experts then route the round;
- **aggregated output, gradients**: within the per-sample result bound of the replica's;
- **loss**: within ``result_bound`` relative (floored) of the replica's;
- **new gate weights**: element-wise within ``update_bound`` of the replica's.

Answers are grouped within the bound and a group accepts the element-wise median of its answers
(``grouping.py``).

Must not know the ledger's transactions: its checks compare tensors with a payload's objects, its
functions return a reason or None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from bmoe.moe.dispatch import routed_samples
from bmoe.moe.gate import Routing
from bmoe.moe.payloads import decode_activation, decode_gradient, decode_result
from bmoe.protocol.comparisons.checks import Differs, TensorChecks, require_within
from bmoe.protocol.comparisons.grouping import (
    Answer,
    Expected,
    Group,
    Grouping,
    Weights,
    accepted_value,
    distance,
    group_answers,
)
from bmoe.protocol.gate_step import Activation, GateUpdate
from bmoe.storage import BlobStore, deserialize_tensors
from bmoe.verify.comparison import Tolerance


@dataclass(frozen=True)
class ToleranceChecks(TensorChecks):
    comparison: Tolerance

    def check_activation(self, store: BlobStore, activation_cid: str, replica: Activation,
                         num_experts: int) -> tuple[Routing, dict[int, torch.Tensor]]:
        """The recorded activation, checked against the replica's gate within the bound, as the routing of
        the round: its experts, and weights recomputed from the replica's logits (attached to the gate)."""
        experts, weights = decode_activation(store.get(activation_cid))
        logits = replica.routing.logits
        require_within(activation_error(experts, weights, logits.detach(), self.comparison))
        chosen = torch.softmax(logits.gather(1, experts.long()), dim=1)  # (B, K), on the gate's graph
        return Routing(experts.long(), chosen, logits), routed_samples(experts.long(), num_experts)

    def check_output(self, store: BlobStore, output_cid: str, logits: torch.Tensor) -> None:
        recorded = decode_result(store.get(output_cid), *logits.shape)
        require_within(result_error("the recorded MoE output", recorded, logits, self.comparison))

    def check_gate_update(self, store: BlobStore, update: GateUpdate, payload: Mapping[str, Any]) -> None:
        require_within(loss_error(float(payload["loss"]), update.loss, self.comparison))
        recorded_gate = deserialize_tensors(store.get(payload["gate_cid"]))[0]
        require_within(weights_error("the recorded gate", recorded_gate, deserialize_tensors(update.gate_data)[0],
                                     self.comparison))
        if set(payload["gradient_cids"]) != {str(e) for e in update.gradients}:
            raise Differs("gradient_cids: not the accepted experts")
        for expert, (_, grad) in sorted(update.gradients.items()):
            recorded = decode_gradient(store.get(payload["gradient_cids"][str(expert)]))
            require_within(result_error(f"the recorded dL/d(output) of expert {expert}", recorded, grad,
                                        self.comparison))

    def group(self, answers: list[Answer], expected: Expected) -> Grouping:
        return group_answers(answers, expected, self.comparison)

    def accepted(self, grouping: Grouping, group: Group, edge_digests: Mapping[str, str], phase: str) -> bytes:
        return accepted_value(grouping, group, edge_digests, phase)


def activation_error(experts: torch.Tensor, weights: torch.Tensor, logits: torch.Tensor,
                     comparison: Tolerance) -> str | None:
    """Why the recorded top-K ``experts`` (B, K) and ``weights`` (B, K) are not the replica's gate
    ``logits`` (B, N) within the bound, or None."""
    if experts.shape != weights.shape or experts.shape[0] != logits.shape[0] or experts.shape[1] > logits.shape[1]:
        return f"the recorded activation's shape {tuple(experts.shape)} does not fit the gate's {tuple(logits.shape)}"
    if bool(((experts < 0) | (experts >= logits.shape[1])).any()):
        return "the recorded activation names an expert that does not exist"
    ordered = experts.sort(dim=1).values  # (B, K)
    if bool((ordered[:, 1:] == ordered[:, :-1]).any()):
        return "the recorded activation names one expert twice for a sample"
    scores = logits.double()  # (B, N)
    slack = comparison.result_bound * scores.norm(dim=1).clamp(min=comparison.norm_floor)  # (B,)
    kth = scores.topk(experts.shape[1], dim=1).values[:, -1]  # (B,)
    chosen = scores.gather(1, experts.long())  # (B, K)
    below = (chosen < (kth - slack)[:, None]).any(dim=1)  # (B,)
    if bool(below.any()):
        sample = int(below.nonzero()[0])
        return (f"sample {sample}: the recorded experts {experts[sample].tolist()} are not a top-{experts.shape[1]} "
                "of the re-executed gate within the bound")
    expected = torch.softmax(chosen, dim=1).float()  # (B, K)
    far = distance({"output": weights}, {"output": expected}, "result", comparison)
    if far > comparison.result_bound:
        return f"the recorded routing weights are {far:.3g} from the re-executed gate's, beyond the bound"
    return None


def result_error(what: str, recorded: torch.Tensor, recomputed: torch.Tensor, comparison: Tolerance) -> str | None:
    """Why a recorded (S, C) tensor is not the replica's within the per-sample bound, or None."""
    if recorded.shape != recomputed.shape:
        return f"{what}: shape {tuple(recorded.shape)} recorded, {tuple(recomputed.shape)} re-executed"
    far = distance({"output": recorded}, {"output": recomputed}, "result", comparison)
    return None if far <= comparison.result_bound else _beyond(what, far)


def loss_error(recorded: float, recomputed: float, comparison: Tolerance) -> str | None:
    gap = abs(recorded - recomputed) / max(abs(recomputed), comparison.norm_floor)
    return None if gap <= comparison.result_bound else f"loss {recorded} is {gap:.3g} from the re-executed {recomputed}"


def weights_error(what: str, recorded: Weights, recomputed: Weights, comparison: Tolerance) -> str | None:
    if set(recorded) != set(recomputed) or any(recorded[n].shape != recomputed[n].shape for n in recorded):
        return f"{what}: not the re-executed tensors' names and shapes"
    far = distance(recorded, {n: t.to(recorded[n].dtype) for n, t in recomputed.items()}, "update", comparison)
    return None if far <= comparison.update_bound else _beyond(what, far)


def _beyond(what: str, far: float) -> str:
    return f"{what} is {far:.3g} from the re-executed value, beyond the bound"
