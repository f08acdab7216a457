"""Scaled outputs: the expert's logits multiplied by ``factor``."""

from __future__ import annotations

from typing import ClassVar

import torch

from bmoe.edge.behaviour import Attack, AttackContext, register


@register
class ScaleOutput(Attack):
    name: ClassVar[str] = "scale"
    defaults: ClassVar[dict[str, float]] = {"factor": 10.0}

    def tamper_output(self, ctx: AttackContext, output: torch.Tensor) -> torch.Tensor | None:
        return output * self.params["factor"] if self.strikes(ctx) else None
