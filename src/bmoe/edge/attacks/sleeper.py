"""A sleeper: honest for its first ``wake_round`` rounds, then the Gaussian attack."""

from __future__ import annotations

from typing import ClassVar

from bmoe.edge.attacks.gaussian import GaussianWeightNoise
from bmoe.edge.behaviour import AttackContext, register


@register
class Sleeper(GaussianWeightNoise):
    name: ClassVar[str] = "sleeper"
    defaults: ClassVar[dict[str, float]] = {"noise_std": 0.5, "wake_round": 5.0}
    ranges: ClassVar[dict[str, tuple[float, float]]] = {"noise_std": (0.0, 1e6), "wake_round": (0.0, 1e9)}

    def strikes(self, ctx: AttackContext) -> bool:
        return ctx.round >= int(self.params["wake_round"]) and super().strikes(ctx)
