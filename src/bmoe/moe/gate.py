"""The linear gate and top-K routing (Shazeer et al., 2017; B-MoE Sec. III).

The gate scores every expert for every sample; each sample is routed to its top-K experts
with weights renormalised over the chosen K (a softmax restricted to the top-K logits).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class LinearGate(nn.Module):
    """A linear map from the flattened input to one logit per expert."""

    def __init__(self, input_dim: int, num_experts: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_dim, num_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))  # (B, N)


@dataclass(frozen=True)
class Routing:
    """Top-K choice per sample: ``experts`` (B, K) int64, ``weights`` (B, K) summing to 1 per row,
    and the gate's ``logits`` (B, N) they came from."""

    experts: torch.Tensor
    weights: torch.Tensor
    logits: torch.Tensor


def route_top_k(logits: torch.Tensor, k: int) -> Routing:
    """Pick the top-``k`` experts per row of ``logits`` (B, N); ties break to the lower index."""
    if not 1 <= k <= logits.shape[1]:
        raise ValueError(f"top-k must be in [1, {logits.shape[1]}], got {k}")
    top_logits, experts = torch.topk(logits, k, dim=1, sorted=True)  # (B, K), (B, K)
    weights = torch.softmax(top_logits, dim=1)  # (B, K): renormalised over the chosen K
    return Routing(experts=experts, weights=weights, logits=logits)


def load_balancing_loss(routing: Routing) -> torch.Tensor:
    """Switch-Transformer auxiliary loss N * sum_i f_i * P_i (Fedus et al., 2021, eq. 4), for top-K:
    f_i is the share of the B*K routing slots given to expert i, P_i the mean gate probability of i.
    It is 1 when routing is uniform and grows as the gate collapses onto few experts."""
    num_experts = routing.logits.shape[1]
    probs = torch.softmax(routing.logits, dim=1).mean(dim=0)  # (N,)
    share = torch.bincount(routing.experts.flatten(), minlength=num_experts).to(probs.dtype)
    share = share / routing.experts.numel()  # (N,)
    return num_experts * (share * probs).sum()
