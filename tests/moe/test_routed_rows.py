"""Routed rows: what one edge computes on, pushed instead of the whole task, index the same bits."""

from __future__ import annotations

import pytest
import torch

from bmoe.moe.dispatch import routed_samples
from bmoe.moe.payloads import PayloadError, decode_routed_rows, encode_routed_rows
from bmoe.storage import serialize_tensors


def test_each_experts_rows_are_the_whole_tasks_rows_bit_for_bit() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 1, 4, 4, generator=generator)  # (B, 1, 4, 4)
    experts = torch.stack([torch.randperm(6, generator=generator)[:2] for _ in range(50)])  # (B, K)
    groups = routed_samples(experts, 6)
    mine = [1, 4]
    local, local_groups = decode_routed_rows(encode_routed_rows(x, groups, mine))
    both = torch.cat([groups[e] for e in mine]).unique()  # a sample routed to both experts travels once
    assert sorted(local_groups) == mine and local.shape[0] == both.numel() < sum(int(groups[e].numel()) for e in mine)
    for expert in mine:
        assert torch.equal(local[local_groups[expert]], x[groups[expert]])


@pytest.mark.parametrize("tensors", [{"x": torch.ones(2, 3), "i": torch.tensor([0, 1])},  # no expert's positions
                                     {"x": torch.tensor([[float("nan")]]), "i": torch.tensor([0]),
                                      "p.1": torch.tensor([0])},
                                     {"x": torch.ones(2, 3), "i": torch.tensor([0, 1]), "p.1": torch.tensor([2])},
                                     {"x": torch.ones(2, 3), "i": torch.tensor([0]), "p.1": torch.tensor([0])},
                                     {}])
def test_malformed_rows_are_refused(tensors: dict[str, torch.Tensor]) -> None:
    with pytest.raises(PayloadError, match="routed rows"):
        decode_routed_rows(serialize_tensors(tensors))
