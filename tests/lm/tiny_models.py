"""Tiny language models for the checkpoint and model tests: d = 32, 2 layers, 4 heads over 2 key/value heads,
4 experts top-2, a 32-token context; their weights spread wide enough that the logits are of order one."""

from __future__ import annotations

import torch
from torch import nn

from bmoe.lm.config import LMConfig
from bmoe.lm.model import MoETransformer, build_model

TINY = {"vocab_size": 50, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "num_local_experts": 4, "num_experts_per_tok": 2,
        "max_position_embeddings": 32}


def tiny_config(**changes: object) -> LMConfig:
    return LMConfig(**{**TINY, **changes})


def spread(module: nn.Module, seed: int, std: float = 0.2) -> nn.Module:
    """Every weight of ``module`` N(0, std), every norm's weight 1 + N(0, std), from ``seed``: initial weights
    (std 0.02, norms 1) give logits near 0, where a wrong norm or a swapped matrix could hide."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator) * std
            parameter.copy_(1 + noise if "norm" in name else noise)
    return module


def tiny_model(seed: int = 3, **changes: object) -> MoETransformer:
    return spread(build_model(tiny_config(**changes), seed), seed).eval()


def random_tokens(config: LMConfig, batch: int, length: int, seed: int) -> torch.Tensor:
    return torch.randint(0, config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))
