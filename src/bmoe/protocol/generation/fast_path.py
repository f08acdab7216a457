"""The fast path of verified generation: each (layer, expert) call of a decoding step goes to one edge, the call's
primary for the chunk (``policy.primary_for``; under a placement, drawn among the slot's holders), and its answer is
used at once; the chunk's verification checks it after the fact.

:class:`FastPath` is an ``ExpertCaller`` (``lm/decoding/expert_calls.py``): the engine calls it once per layer
with every expert's routed rows; it sends each primary its experts' rows in one call, all the layer's primaries
at once (``fan_out.py``). An edge that does not answer
raises :class:`~bmoe.protocol.generation.edges.EdgeGone` out of the engine's step, which then commits nothing and
can be run again once the session has ended the chunk and chosen primaries among the edges left.

Must not know: the ledger, the chunk's decision, sampling.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence

import torch

from bmoe.protocol.generation.edges import EdgeGone, GenerationEdge
from bmoe.protocol.generation.fan_out import fan_out
from bmoe.protocol.generation.policy import primary_for


class MalformedAnswer(EdgeGone):
    """An edge answered rows of the wrong shape or type: as good as no answer (nothing it said can be used)."""

    def __init__(self, address: str, what: str) -> None:
        super().__init__(address, f"edge {address[:12]} answered {what}")


class FastPath:
    """Routes a layer's calls to their primaries among ``serving`` (addresses of ``edges``)."""

    def __init__(self, edges: Mapping[str, GenerationEdge], experts_per_layer: int, seed: int,
                 holders: Sequence[Sequence[str]] = ()) -> None:
        self.edges = edges
        self.holders = holders  # slot -> its holders under a placement (empty: any serving edge)
        self.experts_per_layer = experts_per_layer
        self.seed = seed
        self.chunk = 0
        self.serving: list[str] = list(edges)
        self.primaries: dict[int, str] = {}  # slot -> the edge that answered it in this chunk

    def begin(self, chunk: int, serving: Sequence[str]) -> None:
        """Start ``chunk`` with primaries drawn among ``serving``."""
        self.chunk, self.serving, self.primaries = chunk, list(serving), {}

    def primary(self, slot: int) -> str:
        if slot in self.primaries:
            return self.primaries[slot]
        serving = [a for a in self.serving if a in self.holders[slot]] if self.holders else self.serving
        return primary_for(self.seed, self.chunk, slot, serving)

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        by_edge: dict[str, dict[int, torch.Tensor]] = defaultdict(dict)
        for expert, rows in routed.items():
            by_edge[self.primary(layer * self.experts_per_layer + expert)][expert] = rows
        answers: dict[int, torch.Tensor] = {}
        parts = list(by_edge.items())
        replies = fan_out([functools.partial(self.edges[address].compute, layer, part) for address, part in parts])
        for (address, part), answer in zip(parts, replies, strict=True):
            if isinstance(answer, Exception):
                raise answer  # EdgeGone: the step commits nothing (the first in call order)
            for expert, rows in part.items():
                out = answer.get(expert)
                if not isinstance(out, torch.Tensor) or out.shape != rows.shape or out.dtype != rows.dtype:
                    raise MalformedAnswer(address, f"expert {expert} of layer {layer}: not {tuple(rows.shape)} "
                                                   f"{rows.dtype} rows")
                answers[expert] = out
        for address, part in by_edge.items():
            for expert in part:
                self.primaries[layer * self.experts_per_layer + expert] = address
        return answers
