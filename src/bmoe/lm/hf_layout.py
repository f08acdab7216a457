"""The tensor names of a Mixtral checkpoint, in the two layouts transformers knows.

- **Per expert** (the hub's, and what transformers 5's ``save_pretrained`` writes): each expert's three
  matrices under ``model.layers.{i}.block_sparse_moe.experts.{j}.w1/w2/w3.weight``, the router under
  ``model.layers.{i}.block_sparse_moe.gate.weight``. These are :class:`~bmoe.lm.model.MoETransformer`'s own
  parameter names, so this is the layout bmoe writes.
- **Fused** (what transformers 5 holds in memory, e.g. a ``model.state_dict()`` saved as it is): per layer
  ``model.layers.{i}.mlp.experts.gate_up_proj`` (N, 2I, d), every expert's w1 then its w3 stacked and joined
  along dim 1; ``model.layers.{i}.mlp.experts.down_proj`` (N, d, I), every expert's w2; the router under
  ``model.layers.{i}.mlp.gate.weight``. transformers converts the per-expert names into these on loading
  (``conversion_mapping.py``, "mixtral") and back on saving.

:func:`to_per_expert` turns either into the per-expert names; shapes it cannot split are refused here, every
other check (missing, unexpected, mis-shaped tensors) is the loader's.

Must not know: files, configs' JSON, the model's forward pass.
"""

from __future__ import annotations

import re

import torch

_FUSED_GATE_UP = re.compile(r"^model\.layers\.(\d+)\.mlp\.experts\.gate_up_proj$")
_FUSED_DOWN = re.compile(r"^model\.layers\.(\d+)\.mlp\.experts\.down_proj$")
_FUSED_ROUTER = re.compile(r"^model\.layers\.(\d+)\.mlp\.gate\.weight$")


class LayoutError(ValueError):
    """A fused expert tensor that cannot be split into the per-expert matrices; the message names it."""


def expert_name(layer: int, expert: int, matrix: str) -> str:
    """The per-expert name of matrix ``w1``, ``w2`` or ``w3`` of expert ``expert`` in layer ``layer``."""
    return f"model.layers.{layer}.block_sparse_moe.experts.{expert}.{matrix}.weight"


def _split_gate_up(name: str, layer: int, fused: torch.Tensor) -> dict[str, torch.Tensor]:
    """gate_up_proj (N, 2I, d) -> each expert's w1 (I, d) (the first half) and w3 (I, d) (the second)."""
    if fused.dim() != 3 or fused.shape[1] % 2:
        raise LayoutError(f"{name} has shape {list(fused.shape)}, not (experts, 2 x intermediate, hidden)")
    width = fused.shape[1] // 2
    split = {}
    for expert in range(fused.shape[0]):
        split[expert_name(layer, expert, "w1")] = fused[expert, :width].clone()  # (I, d)
        split[expert_name(layer, expert, "w3")] = fused[expert, width:].clone()  # (I, d)
    return split


def _split_down(name: str, layer: int, fused: torch.Tensor) -> dict[str, torch.Tensor]:
    """down_proj (N, d, I) -> each expert's w2 (d, I)."""
    if fused.dim() != 3:
        raise LayoutError(f"{name} has shape {list(fused.shape)}, not (experts, hidden, intermediate)")
    return {expert_name(layer, expert, "w2"): fused[expert].clone() for expert in range(fused.shape[0])}


def _per_expert(name: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    """The per-expert tensors one checkpoint tensor stands for (itself, when it is not fused)."""
    if match := _FUSED_GATE_UP.match(name):
        return _split_gate_up(name, int(match[1]), tensor)
    if match := _FUSED_DOWN.match(name):
        return _split_down(name, int(match[1]), tensor)
    if match := _FUSED_ROUTER.match(name):
        return {f"model.layers.{match[1]}.block_sparse_moe.gate.weight": tensor}
    return {name: tensor}


def to_per_expert(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` with every fused expert tensor split into per-expert ones and ``mlp.gate`` renamed to
    ``block_sparse_moe.gate``; per-expert names (and anything else) pass through unchanged. A tensor given in
    both layouts is refused."""
    converted: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        for new_name, new_tensor in _per_expert(name, tensor).items():
            if new_name in converted:
                raise LayoutError(f"{new_name} is given twice (in the fused and the per-expert layout)")
            converted[new_name] = new_tensor
    return converted
