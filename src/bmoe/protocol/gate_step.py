"""The validators' tensor rules as pure functions of stored bytes: gate evaluation and the gate update.

A proposer computes them to build a round; every other validator recomputes them to check a proposed
block (``protocol/reexecute.py``). Same inputs, same torch build and thread count: same bytes, so
the results are compared by CID.

No validator records a non-finite number: when the gate's routing weights, the loss, the new gate
or a gradient is NaN or inf (training diverged, say with a learning rate far too large), the rule
raises :class:`RoundDiverged` and the round fails before anything of it is sealed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bmoe.edge.profiles import NumericProfile
from bmoe.moe.dispatch import combine, routed_samples
from bmoe.moe.gate import LinearGate, Routing, load_balancing_loss, route_top_k
from bmoe.moe.payloads import NonFiniteValue, encode_activation, encode_gradient, require_finite
from bmoe.storage import serialize_tensors

Weights = dict[str, torch.Tensor]


class RoundDiverged(NonFiniteValue):
    """A value the validators compute (or the edges agree on) is NaN or inf: nothing of the round is
    sealed. The message names the value and the likely cause."""


def require_finite_round(what: str, tensor: torch.Tensor, hint: str = "") -> None:
    """Raise :class:`RoundDiverged` unless ``tensor`` is finite."""
    try:
        require_finite(what, tensor)
    except NonFiniteValue as err:
        raise RoundDiverged(f"round diverged: {err}{'; ' + hint if hint else ''}; nothing is sealed") from None


DIVERGED_HINT = "training diverged (is the learning rate too large?)"


def load_gate(weights: Weights, input_dim: int, num_experts: int) -> LinearGate:
    gate = LinearGate(input_dim, num_experts)
    gate.load_state_dict(weights)
    return gate


def logits_under(profile: NumericProfile) -> Callable[[LinearGate, torch.Tensor], torch.Tensor]:
    """``forward(gate, x)`` computing the gate's logits (B, N) float32 under ``profile`` (a validator's
    numerics), attached to the gate's graph."""
    def forward(gate: LinearGate, x: torch.Tensor) -> torch.Tensor:
        with profile.computing():
            return profile.forward(profile.prepare(gate), x)
    return forward


@dataclass(frozen=True)
class Activation:
    routing: Routing
    groups: dict[int, torch.Tensor]  # expert -> ascending sample indices
    data: bytes  # the encoded activation, stored under its CID


def evaluate_gate(gate: LinearGate, x: torch.Tensor, top_k: int, num_experts: int, train: bool,
                  forward: Callable[[LinearGate, torch.Tensor], torch.Tensor] | None = None) -> Activation:
    """Step 1: the gate's top-K choice for every sample of the task. ``forward(gate, x)`` computes the
    logits (B, N) on other numerics (a re-executing replica's profile); by default ``gate(x)``."""
    with torch.set_grad_enabled(train):
        routing = route_top_k(gate(x) if forward is None else forward(gate, x), top_k)  # (B, K) each
    require_finite_round("the gate's routing weights", routing.weights,
                         "the gate's weights or the task's inputs are too large for float32")
    return Activation(routing, routed_samples(routing.experts, num_experts),
                      encode_activation(routing.experts, routing.weights))


@dataclass(frozen=True)
class GateUpdate:
    loss: float
    gate_data: bytes  # the new gate weights, encoded
    gradients: dict[int, tuple[bytes, torch.Tensor]]  # expert -> (encoded dL/d(output), the tensor)


def update_gate(gate: LinearGate, routing: Routing, groups: Mapping[int, torch.Tensor],
                outputs: Mapping[int, torch.Tensor], y: torch.Tensor, num_classes: int, lr: float,
                balance: float) -> GateUpdate:
    """Step 4: cross-entropy of the aggregated output, one SGD step of the gate (with the
    load-balancing term weighted by ``balance``, which reaches the gate only), and dL/d(output)
    for every accepted expert. ``routing`` must carry the graph back to ``gate``'s parameters."""
    leaves = {e: out.detach().requires_grad_(True) for e, out in outputs.items()}  # (n_e, C)
    logits = combine(routing.experts, routing.weights, leaves, groups, num_classes)  # (B, C)
    loss = F.cross_entropy(logits, y)
    gate.zero_grad(set_to_none=True)
    total = loss + balance * load_balancing_loss(routing) if balance > 0 else loss
    if total.requires_grad:  # nothing accepted and no balance term: the gate has no gradient this round
        total.backward()
    with torch.no_grad():
        new_gate = {name: (p - lr * p.grad if p.grad is not None else p.detach().clone()).to(torch.float32)
                    for name, p in gate.state_dict(keep_vars=True).items()}  # float32, whatever the numerics
    require_finite_round("the loss", loss.detach(), DIVERGED_HINT)
    for name, weights in sorted(new_gate.items()):
        require_finite_round(f"the new gate's {name}", weights, DIVERGED_HINT)
    gradients = {}
    for expert, leaf in sorted(leaves.items()):
        grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
        require_finite_round(f"dL/d(output) of expert {expert}", grad, DIVERGED_HINT)
        gradients[expert] = (encode_gradient(grad), grad)
    return GateUpdate(float(loss.item()), serialize_tensors(new_gate), gradients)
