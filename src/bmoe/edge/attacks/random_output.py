"""Random outputs: logits replaced by N(0, ``std``²) noise of the same shape."""

from __future__ import annotations

from typing import ClassVar

import torch

from bmoe.edge.behaviour import Attack, AttackContext, register


@register
class RandomOutput(Attack):
    name: ClassVar[str] = "random"
    defaults: ClassVar[dict[str, float]] = {"std": 1.0}
    ranges: ClassVar[dict[str, tuple[float, float]]] = {"std": (0.0, 1e6)}

    def tamper_output(self, ctx: AttackContext, output: torch.Tensor) -> torch.Tensor | None:
        if not self.strikes(ctx):
            return None
        noise = torch.randn(output.shape, generator=ctx.generator("random"), dtype=output.dtype)
        return self.params["std"] * noise
