"""Group samples by expert and combine expert outputs back into the MoE output.

Expert computation is grouped: each expert runs once on the samples routed to it (never a loop
over samples). Aggregation renormalises over the experts whose results were accepted, so a
rejected or missing expert result drops out of a sample's mixture instead of poisoning it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def samples_for_expert(experts: torch.Tensor, expert: int) -> torch.Tensor:
    """Indices (ascending) of the samples whose top-K includes ``expert``; ``experts`` is (B, K)."""
    return torch.nonzero((experts == expert).any(dim=1), as_tuple=False).flatten()  # (n_e,)


def routed_samples(experts: torch.Tensor, num_experts: int) -> dict[int, torch.Tensor]:
    """For every activated expert of ``range(num_experts)``, in ascending order, the ascending indices of its
    samples (only the experts the routing names are looked for: a language model's layer routes to N of its
    L * N slots)."""
    return {expert: samples_for_expert(experts, expert) for expert in torch.unique(experts).tolist()
            if 0 <= expert < num_experts}


def activation_counts(experts: torch.Tensor, num_experts: int) -> list[int]:
    """How many samples each expert serves in this batch."""
    return torch.bincount(experts.flatten(), minlength=num_experts).tolist()


def combine(
    experts: torch.Tensor,
    weights: torch.Tensor,
    outputs: Mapping[int, torch.Tensor],
    groups: Mapping[int, torch.Tensor],
    out_dim: int,
    renormalise: bool = True,
) -> torch.Tensor:
    """Weighted sum of accepted expert outputs, renormalised per sample over accepted experts.

    ``experts``/``weights``: (B, K). ``outputs[e]``: (n_e, out_dim) for the samples ``groups[e]``;
    experts absent from ``outputs`` were not accepted. Samples left with no accepted expert get a
    zero output. Differentiable in ``weights`` and in every ``outputs[e]``. ``renormalise=False`` weighs each
    accepted output by its weight as given (a sum of neuron slices: a missing slice is missing from the sum).
    """
    batch = experts.shape[0]
    accepted = torch.zeros_like(weights, dtype=torch.bool)  # (B, K)
    for expert in outputs:
        accepted |= experts == expert
    masked = weights * accepted  # (B, K)
    if renormalise:
        norm = masked.sum(dim=1, keepdim=True)  # (B, 1)
        mix = masked / torch.where(norm > 0, norm, torch.ones_like(norm))  # (B, K)
    else:
        mix = masked
    y = weights.new_zeros(batch, out_dim)  # (B, out_dim)
    for expert, out in outputs.items():
        rows = groups[expert]  # (n_e,)
        slot_weight = (mix[rows] * (experts[rows] == expert)).sum(dim=1, keepdim=True)  # (n_e, 1)
        y = y.index_add(0, rows, slot_weight * out)
    return y
