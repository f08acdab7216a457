"""Owns training a MoEfied model's routers by distillation against its dense FFN, so that each token can run fewer
than all of a layer's neuron-slice experts (K < E) at a measured cost in perplexity.

A MoEfied model with every expert active (``moefication.py``) is the dense model; its FFN output is the sum of E
slices. Keeping K of them drops the others' outputs, so the slices worth keeping for a token are those whose
outputs are largest (MoEfication, Zhang et al., 2022, trains its routers on such a target). For each layer:

1. the FFN's inputs x (n, d) on some text, from the exact model (all E active);
2. each slice's output norm on them, ``||expert_e(x)||`` (n, E), and each token's K largest as the label;
3. the layer's linear router (E, d) trained on them: a multi-label logistic loss (each expert "kept or not"),
   Adam, full batch, from zero, a fixed number of steps (deterministic: no sampling).

The result is the same weights in a model whose config chooses K experts, summed with weight 1 as before.

Must not know: where the text came from, tokenizers, the protocol.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from bmoe.lm.checkpoint import checkpoint_tensors, model_from_tensors
from bmoe.lm.evaluation import inference
from bmoe.lm.model import MoETransformer, SparseMoE

STEPS = 300  # full-batch Adam steps a layer: the loss has flattened by then on SmolLM2 (4096 tokens)
LR = 0.01


def ffn_inputs(model: MoETransformer, windows: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's FFN input (n, d), n = B*T, on the token ``windows`` (B, T)."""
    captured: list[torch.Tensor] = []
    hooks = [layer.block_sparse_moe.register_forward_pre_hook(
        lambda _module, args: captured.append(args[0].reshape(-1, args[0].shape[-1]).detach()))
        for layer in model.layers]
    try:
        with inference(model):
            model(windows)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def slice_norms(moe: SparseMoE, x: torch.Tensor) -> torch.Tensor:
    """Each expert's output norm on every token of ``x`` (n, d): (n, E)."""
    with torch.no_grad():
        return torch.stack([expert(x).norm(dim=-1) for expert in moe.experts], dim=1)  # (n, E)


def train_router(x: torch.Tensor, norms: torch.Tensor, top_k: int, steps: int = STEPS, lr: float = LR) -> torch.Tensor:
    """A router (E, d) whose top-``top_k`` logits on ``x`` (n, d) pick the experts of largest output ``norms``
    (n, E): a logistic loss per (token, expert), kept or not."""
    keep = torch.zeros_like(norms).scatter_(1, norms.topk(top_k, dim=1).indices, 1.0)  # (n, E) multi-hot
    weight = torch.zeros(norms.shape[1], x.shape[1], requires_grad=True)  # (E, d)
    optimizer = torch.optim.Adam([weight], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(x @ weight.T, keep).backward()
        optimizer.step()
    return weight.detach()


def with_top_k(model: MoETransformer, top_k: int) -> MoETransformer:
    """``model``'s weights in a model whose layers choose ``top_k`` experts a token."""
    config = dataclasses.replace(model.config, num_experts_per_tok=top_k)
    return model_from_tensors(config, checkpoint_tensors(model)).eval()


def distill_routers(model: MoETransformer, windows: torch.Tensor, top_k: int, steps: int = STEPS) -> MoETransformer:
    """A copy of the MoEfied ``model`` (every expert active, summed) whose routers, distilled on the token
    ``windows`` (B, T), choose ``top_k`` experts a token."""
    config = model.config
    if config.router_weighting != "unit" or config.num_experts_per_tok != config.num_local_experts:
        raise ValueError("routers are distilled from a MoEfied model: every expert active, summed (router_weighting "
                         f"'unit'), not K = {config.num_experts_per_tok} of {config.num_local_experts} "
                         f"({config.router_weighting})")
    if not 1 <= top_k <= config.num_local_experts:
        raise ValueError(f"top_k must be in [1, {config.num_local_experts}], got {top_k}")
    distilled = with_top_k(model, top_k)
    for layer, x in zip(distilled.layers, ffn_inputs(model, windows), strict=True):
        moe = layer.block_sparse_moe
        with torch.enable_grad():
            router = train_router(x, slice_norms(moe, x), top_k, steps)
        with torch.no_grad():
            moe.gate.weight.copy_(router)
    return distilled
