"""Gate, top-K routing, grouped dispatch and aggregation against plain per-sample loops."""

from __future__ import annotations

import pytest
import torch

from bmoe.moe.dispatch import activation_counts, combine, routed_samples
from bmoe.moe.experts import CNNExpert, ExpertSpec, MLPExpert, build_expert
from bmoe.moe.gate import LinearGate, load_balancing_loss, route_top_k
from bmoe.moe.model import MoE


def test_top_k_picks_largest_and_renormalises() -> None:
    logits = torch.tensor([[0.1, 2.0, -1.0, 1.5], [3.0, 0.0, 0.0, -2.0]])
    routing = route_top_k(logits, 2)
    assert routing.experts.tolist() == [[1, 3], [0, 1]]
    expected = torch.softmax(torch.tensor([[2.0, 1.5], [3.0, 0.0]]), dim=1)
    assert torch.allclose(routing.weights, expected)
    assert torch.allclose(routing.weights.sum(1), torch.ones(2))


def test_top_k_rejects_k_out_of_range() -> None:
    with pytest.raises(ValueError, match="top-k"):
        route_top_k(torch.zeros(2, 3), 4)


def _loop_combine(experts, weights, outputs, accepted, out_dim):  # type: ignore[no-untyped-def]
    """Reference: per sample, renormalise over accepted experts and sum."""
    y = torch.zeros(experts.shape[0], out_dim)
    for b in range(experts.shape[0]):
        total = sum(float(weights[b, k]) for k in range(experts.shape[1]) if int(experts[b, k]) in accepted)
        for k in range(experts.shape[1]):
            e = int(experts[b, k])
            if e in accepted and total > 0:
                y[b] += float(weights[b, k]) / total * outputs[e][b]
    return y


@pytest.mark.parametrize("dropped", [(), (2,), (0, 1)])
def test_combine_matches_per_sample_loop(dropped: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 5, generator=gen)
    routing = route_top_k(logits, 2)
    full = {e: torch.randn(12, 3, generator=gen) for e in range(5)}  # every sample's output per expert
    groups = routed_samples(routing.experts, 5)
    accepted = {e for e in groups if e not in dropped}
    outputs = {e: full[e][groups[e]] for e in accepted}
    y = combine(routing.experts, routing.weights, outputs, groups, 3)
    assert torch.allclose(y, _loop_combine(routing.experts, routing.weights, full, accepted, 3), atol=1e-6)


def test_sample_without_accepted_expert_gets_zero_output() -> None:
    experts = torch.tensor([[0, 1], [2, 3]])
    weights = torch.full((2, 2), 0.5)
    groups = routed_samples(experts, 4)
    y = combine(experts, weights, {0: torch.ones(1, 2)}, groups, 2)
    assert y.tolist() == [[1.0, 1.0], [0.0, 0.0]]


def test_grouped_moe_equals_per_sample_computation() -> None:
    torch.manual_seed(0)
    experts = [MLPExpert(16, 4, hidden=8) for _ in range(5)]
    moe = MoE(LinearGate(16, 5), experts, top_k=3, num_classes=4)
    x = torch.randn(20, 1, 4, 4)
    y = moe(x)
    routing = route_top_k(moe.gate(x), 3)
    for b in range(20):
        ref = sum(routing.weights[b, k] * experts[int(routing.experts[b, k])](x[b:b + 1])[0] for k in range(3))
        assert torch.allclose(y[b], ref, atol=1e-5)
    assert sum(activation_counts(routing.experts, 5)) == 60


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_expert_presets_map_inputs_to_logits(shape: tuple[int, int, int]) -> None:
    for preset in ("mlp", "cnn"):
        expert = build_expert(ExpertSpec(preset, shape, 10))
        assert expert(torch.randn(3, *shape)).shape == (3, 10)
    assert isinstance(build_expert(ExpertSpec("cnn", shape, 10)), CNNExpert)


def test_mlp_preset_is_the_papers_two_layer_256_relu() -> None:
    expert = build_expert(ExpertSpec("mlp", (1, 28, 28), 10))
    assert [tuple(p.shape) for p in expert.parameters()] == [(256, 784), (256,), (10, 256), (10,)]


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown expert preset"):
        build_expert(ExpertSpec("transformer", (1, 8, 8), 10))


def test_load_balancing_loss_is_one_when_uniform_and_larger_when_collapsed() -> None:
    uniform = route_top_k(torch.zeros(8, 4), 4)  # every expert gets every sample, equal probabilities
    even = route_top_k(torch.eye(4).repeat(2, 1) * 5, 1)
    collapsed = route_top_k(torch.tensor([[5.0, 0, 0, 0]]).repeat(8, 1), 1)
    assert float(load_balancing_loss(uniform)) == pytest.approx(1.0)
    assert load_balancing_loss(even) < load_balancing_loss(collapsed)
    assert float(load_balancing_loss(collapsed)) > 3.0
