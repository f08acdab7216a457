"""The router's auxiliary losses, per layer, from its logits (n, N).

- **Load balancing** (Switch Transformer, Fedus et al., 2021, eq. 4, for top-K): N * sum_i f_i * P_i, with f_i
  the share of the n*K routing slots that went to expert i and P_i the mean router probability of i. It is 1
  when routing is uniform and grows as the router collapses onto few experts. Hugging Face's Mixtral concatenates
  every layer's logits before taking the means and multiplies by K; bmoe takes it per layer (each layer's router
  is balanced on its own tokens, as Switch and OLMoE do) and averages over layers.
- **Router z-loss** (ST-MoE, Zoph et al., 2022, eq. 5): the mean over tokens of logsumexp(logits)^2, which keeps
  the router's logits small, so the float32 softmax stays well conditioned.

Must not know: the model around the router.
"""

from __future__ import annotations

import torch

from bmoe.moe.gate import load_balancing_loss as switch_loss
from bmoe.moe.gate import route_top_k


def load_balancing_loss(router_logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Switch's load-balancing loss of one layer's router logits (n, N) under top-``top_k`` routing."""
    return switch_loss(route_top_k(router_logits.float(), top_k))


def router_z_loss(router_logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE's z-loss of one layer's router logits (n, N): mean_n logsumexp(logits_n)^2."""
    return torch.logsumexp(router_logits.float(), dim=-1).pow(2).mean()
