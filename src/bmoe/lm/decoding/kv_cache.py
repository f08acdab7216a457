"""One sequence's attention keys and values, per layer, for decoding one token at a time.

Keys are stored after their rotary rotation (at their absolute positions), keys and values before grouped-query
heads are repeated: (L, H_kv, capacity, hd) each. The cache holds positions 0..length-1; a step writes every
layer's entries for the same new positions and then :meth:`KVCache.advance` commits them. The capacity doubles
as needed (up to the context), so a short sequence of a long-context model holds little memory. A rollback
:meth:`truncate`\\ s it.

Must not know: the model's weights, routing, sampling.
"""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of positions 0..``length``-1 of one sequence, every layer."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, context: int, dtype: torch.dtype,
                 device: torch.device | str = "cpu") -> None:
        self.context = context
        self.length = 0
        self._shape = (layers, kv_heads, 0, head_dim)
        self.keys = torch.empty(self._shape, dtype=dtype, device=device)  # (L, Hkv, capacity, hd)
        self.values = torch.empty(self._shape, dtype=dtype, device=device)

    def empty_like(self) -> KVCache:
        """An empty cache of the same layers, heads, context, dtype and device."""
        layers, kv_heads, _, head_dim = self._shape
        return KVCache(layers, kv_heads, head_dim, self.context, self.keys.dtype, self.keys.device)

    @property
    def capacity(self) -> int:
        return self.keys.shape[2]

    def _reserve(self, length: int) -> None:
        if length > self.context:
            raise ValueError(f"a cache of {length} positions is longer than the context ({self.context})")
        if length <= self.capacity:
            return
        capacity = min(self.context, max(length, 2 * self.capacity, 16))
        layers, heads, _, head_dim = self._shape
        keys = self.keys.new_empty(layers, heads, capacity, head_dim)
        values = self.values.new_empty(layers, heads, capacity, head_dim)
        keys[:, :, :self.length] = self.keys[:, :, :self.length]
        values[:, :, :self.length] = self.values[:, :, :self.length]
        self.keys, self.values = keys, values

    def extend(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``keys``/``values`` (H_kv, t, hd) of positions length..length+t-1 for ``layer``; return that
        layer's keys and values of positions 0..length+t-1, (H_kv, length+t, hd) each (not committed until
        :meth:`advance`)."""
        end = self.length + keys.shape[1]
        self._reserve(end)
        self.keys[layer, :, self.length:end] = keys
        self.values[layer, :, self.length:end] = values
        return self.keys[layer, :, :end], self.values[layer, :, :end]

    def advance(self, positions: int) -> None:
        """Commit the ``positions`` new positions every layer has written."""
        self.length += positions

    def truncate(self, length: int) -> None:
        """Keep positions 0..``length``-1 only (a rollback)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a cache of {self.length} positions to {length}")
        self.length = length
