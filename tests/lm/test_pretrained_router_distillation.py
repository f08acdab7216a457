"""Routers distilled against the dense FFN let a MoEfied model keep K < E slices a token: they keep the slices
that matter (closer to the dense FFN on unseen tokens than keeping the first K), the rest of the model unchanged,
deterministically; only a model with every expert active, summed, is distilled from."""

from __future__ import annotations

import pytest
import torch

from bmoe.lm.pretrained.moefication import moefy
from bmoe.lm.pretrained.router_distillation import distill_routers, ffn_inputs, with_top_k
from tests.lm.test_pretrained_moefication import SHAPE, dense_ffn, dense_tensors
from tests.lm.tiny_models import random_tokens


def ffn_error(model: torch.nn.Module, dense: dict[str, torch.Tensor], inputs: list[torch.Tensor]) -> float:
    """The FFN outputs' distance to the dense FFN's over every layer, relative to the dense outputs' norm."""
    error = norm = 0.0
    with torch.no_grad():
        for layer, x in enumerate(inputs):
            out, _ = model.layers[layer].block_sparse_moe(x[None])  # type: ignore[index]
            error += float((out[0] - dense_ffn(dense, layer, x)).norm())
            norm += float(dense_ffn(dense, layer, x).norm())
    return error / norm


def test_distilled_routers_keep_the_slices_that_matter_and_nothing_else_changes() -> None:
    dense = dense_tensors()
    model = moefy(SHAPE, dense, experts=8)
    distilled = distill_routers(model, random_tokens(model.config, 8, 16, seed=5), top_k=4, steps=200)
    assert distilled.config.num_experts_per_tok == 4 and model.config.num_experts_per_tok == 8
    unseen = ffn_inputs(model, random_tokens(model.config, 4, 16, seed=6))  # (n, d) per layer
    first_four = ffn_error(with_top_k(model, 4), dense, unseen)
    assert ffn_error(model, dense, unseen) < 1e-5  # all eight: the dense FFN
    assert ffn_error(distilled, dense, unseen) < 0.8 * first_four, (ffn_error(distilled, dense, unseen), first_four)
    theirs, ours = model.state_dict(), distilled.state_dict()
    for name, tensor in ours.items():
        assert torch.equal(tensor, theirs[name]) != name.endswith("block_sparse_moe.gate.weight"), name
    again = distill_routers(model, random_tokens(model.config, 8, 16, seed=5), top_k=4, steps=200)
    assert all(torch.equal(again.state_dict()[name], tensor) for name, tensor in ours.items())


def test_only_a_model_with_every_slice_active_is_distilled_from() -> None:
    model = moefy(SHAPE, dense_tensors(), experts=4)
    tokens = random_tokens(model.config, 2, 8, seed=7)
    with pytest.raises(ValueError, match="every expert active"):
        distill_routers(with_top_k(model, 2), tokens, top_k=1, steps=1)
    with pytest.raises(ValueError, match=r"top_k must be in \[1, 4\], got 5"):
        distill_routers(model, tokens, top_k=5, steps=1)
