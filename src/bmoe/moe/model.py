"""A plain, local Mixture-of-Experts module: the reference the distributed round must match.

``MoE`` is what a PyTorch user would write without any ledger: gate, top-K routing, grouped
expert computation, weighted aggregation. The B-MoE round computes the same function with the
experts on edges and the gate on validators.
"""

from __future__ import annotations

import torch
from torch import nn

from bmoe.moe.dispatch import combine, routed_samples
from bmoe.moe.gate import LinearGate, route_top_k


class MoE(nn.Module):
    """Gate + experts with top-K routing; ``forward`` returns (B, num_classes) logits."""

    def __init__(self, gate: LinearGate, experts: list[nn.Module], top_k: int, num_classes: int) -> None:
        super().__init__()
        self.gate = gate
        self.experts = nn.ModuleList(experts)
        self.top_k = top_k
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        routing = route_top_k(self.gate(x), self.top_k)  # (B, K) each
        groups = routed_samples(routing.experts, len(self.experts))
        outputs = {e: self.experts[e](x[rows]) for e, rows in groups.items()}  # (n_e, C) each
        return combine(routing.experts, routing.weights, outputs, groups, self.num_classes)
