"""Replay: resubmit the result this edge produced for the expert in an earlier round."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from bmoe.edge.behaviour import Attack, AttackContext, register


@register
class ReplayStale(Attack):
    """Keeps the first result it sees per expert and, when striking, sends it again later."""

    name: ClassVar[str] = "replay"

    def __init__(self, probability: float = 0.2, **params: Any) -> None:
        super().__init__(probability, **params)
        self._stale: dict[int, torch.Tensor] = {}

    def tamper_output(self, ctx: AttackContext, output: torch.Tensor) -> torch.Tensor | None:
        stale = self._stale.get(ctx.expert)
        if stale is None:
            self._stale[ctx.expert] = output.detach().clone()
            return None
        return stale if self.strikes(ctx) else None
