"""MoEfication: a SwiGLU FFN split into neuron slices is the sum of its slices, so a model whose chosen experts are
summed (``router_weighting`` "unit") with all E active is the dense model up to summation order, whatever its
routers; the validators' mix sums as the model does; "softmax" stays Mixtral's, and its config.json is unchanged; a
MoEfied model's checkpoint says "unit" and reads back the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bmoe.data.errors import DataError
from bmoe.lm.checkpoint import load_pretrained, save_pretrained
from bmoe.lm.config import LMConfig, LMConfigError
from bmoe.lm.model import MoETransformer
from bmoe.lm.pretrained.gguf_llama import LlamaShape
from bmoe.lm.pretrained.moefication import moefied_config, moefied_tensors, moefy
from bmoe.moe.dispatch import combine
from bmoe.protocol.lm.layers import enter_layer, leave_layer
from tests.lm.gguf_files import random_dense
from tests.lm.tiny_models import random_tokens, spread, tiny_config

SHAPE = LlamaShape(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=32, rope_theta=10000.0, rms_norm_eps=1e-5,
                   tie_word_embeddings=False)
ATOL = 1e-5  # float32: the FFN summed slice by slice instead of in one matrix product


def dense_tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(value) for name, value in random_dense(SHAPE, seed).items()}


def dense_ffn(dense: dict[str, torch.Tensor], layer: int, x: torch.Tensor) -> torch.Tensor:
    """The dense Llama's FFN of ``layer`` on ``x`` (n, d): down(silu(gate x) * up x)."""
    prefix = f"model.layers.{layer}.mlp"
    gate, up, down = (dense[f"{prefix}.{name}_proj.weight"] for name in ("gate", "up", "down"))
    return F.linear(F.silu(F.linear(x, gate)) * F.linear(x, up), down)


@pytest.mark.parametrize("experts", [1, 2, 4, 8])
def test_the_summed_slices_of_every_layer_are_the_dense_ffn(experts: int) -> None:
    dense = dense_tensors()
    model = moefy(SHAPE, dense, experts)
    x = torch.randn(7, SHAPE.hidden_size, generator=torch.Generator().manual_seed(1))  # (n, d)
    for layer in range(SHAPE.num_hidden_layers):
        with torch.no_grad():
            moe, router_logits = model.layers[layer].block_sparse_moe(x[None])
        assert router_logits.shape == (7, experts)
        torch.testing.assert_close(moe[0], dense_ffn(dense, layer, x), rtol=0, atol=ATOL)


def test_with_every_expert_chosen_the_routers_weights_do_not_matter() -> None:
    model = moefy(SHAPE, dense_tensors(), 4)
    tokens = random_tokens(model.config, 2, 12, seed=2)
    with torch.no_grad():
        before = model(tokens).logits
        for layer in model.layers:
            layer.block_sparse_moe.gate.weight.normal_(0, 1.0)
        after = model(tokens).logits
    torch.testing.assert_close(after, before, rtol=0, atol=ATOL)


def test_unit_weighting_sums_the_chosen_experts_and_softmax_mixes_them() -> None:
    experts = torch.tensor([[0, 1], [1, 0]])  # (B, K)
    weights = torch.tensor([[0.75, 0.25], [0.5, 0.5]])
    outputs = {0: torch.tensor([[1.0], [2.0]]), 1: torch.tensor([[10.0], [20.0]])}
    groups = {0: torch.tensor([0, 1]), 1: torch.tensor([0, 1])}
    ones = torch.ones_like(weights)
    assert combine(experts, ones, outputs, groups, 1, renormalise=False).flatten().tolist() == [11.0, 22.0]
    assert combine(experts, ones, outputs, groups, 1).flatten().tolist() == [5.5, 11.0]  # Mixtral's: a mean
    assert combine(experts, weights, outputs, groups, 1).flatten().tolist() == [3.25, 11.0]
    missing = combine(experts, ones, {1: outputs[1]}, groups, 1, renormalise=False)  # expert 0's call rejected
    assert missing.flatten().tolist() == [10.0, 20.0]  # left out of the sum, the rest not scaled up


def test_the_validators_mix_of_a_unit_model_is_the_models_layer() -> None:
    model = spread(MoETransformer(tiny_config(num_experts_per_tok=4, router_weighting="unit")), seed=3).eval()
    config = model.config
    h = model.embed(random_tokens(config, 2, 16, seed=4))  # (B, T, d)
    layer = enter_layer(model, 1, h, train=False)
    block = model.layers[1].block_sparse_moe
    outputs = {slot: block.experts[config.layer_expert(slot)[1]](layer.x[rows]) for slot, rows in layer.groups.items()}
    with torch.no_grad():
        expected, _ = model.layers[1](h, *model.rotary(16))
        torch.testing.assert_close(leave_layer(layer, outputs, train=False), expected, rtol=0, atol=1e-6)


def test_softmax_stays_the_default_and_out_of_config_json_unit_is_written_and_read_back() -> None:
    mixtral = tiny_config()
    assert mixtral.router_weighting == "softmax" and "router_weighting" not in mixtral.to_hf()
    unit = tiny_config(router_weighting="unit")
    assert unit.to_hf()["router_weighting"] == "unit"
    assert LMConfig.from_hf(unit.to_hf()) == unit and LMConfig.from_hf(mixtral.to_hf()) == mixtral
    with pytest.raises(LMConfigError, match="router_weighting must be one of softmax, unit, got 'mean'"):
        tiny_config(router_weighting="mean")


def test_the_moefied_config_keeps_the_dense_shape_and_refuses_an_uneven_split() -> None:
    config = moefied_config(SHAPE, 4)
    assert (config.num_local_experts, config.num_experts_per_tok, config.intermediate_size) == (4, 4, 12)
    assert config.router_weighting == "unit" and not config.tie_word_embeddings
    assert (config.rope_theta, config.rms_norm_eps, config.num_key_value_heads) == (10000.0, 1e-5, 2)
    assert "lm_head.weight" in moefied_tensors(config, dense_tensors())
    for bad in (5, 0, True):
        with pytest.raises(DataError, match="positive divisor of the FFN width 48"):
            moefied_config(SHAPE, bad)


def test_a_moefied_model_saved_as_a_checkpoint_reads_back_summing(tmp_path: Path) -> None:
    model = moefy(SHAPE, dense_tensors(), 4)
    save_pretrained(model, tmp_path / "moefied")
    assert json.loads((tmp_path / "moefied" / "config.json").read_text())["router_weighting"] == "unit"
    again = load_pretrained(tmp_path / "moefied")
    assert again.config == model.config
    tokens = random_tokens(model.config, 1, 8, seed=8)
    with torch.no_grad():
        assert torch.equal(again(tokens).logits, model(tokens).logits)
