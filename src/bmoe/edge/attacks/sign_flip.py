"""Sign-flipped outputs: the expert's logits negated."""

from __future__ import annotations

from typing import ClassVar

import torch

from bmoe.edge.behaviour import Attack, AttackContext, register


@register
class SignFlip(Attack):
    name: ClassVar[str] = "sign_flip"

    def tamper_output(self, ctx: AttackContext, output: torch.Tensor) -> torch.Tensor | None:
        return -output if self.strikes(ctx) else None
