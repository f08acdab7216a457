"""The paper's attack (Sec. V): Gaussian noise injected into the weights of employed experts."""

from __future__ import annotations

from typing import ClassVar

import torch

from bmoe.edge.behaviour import Attack, AttackContext, Weights, register
from bmoe.moe.fixed_point import dequantize_weights, quantize_weights


@register
class GaussianWeightNoise(Attack):
    """With ``probability`` per round, add N(0, ``noise_std``²) to every weight of the expert.

    The noise changes both the results and, in training, the updated weights the edge uploads. An
    integer expert's fixed-point weights (``moe/fixed_point.py``) get the same noise in real units,
    rounded to their format.
    """

    name: ClassVar[str] = "gaussian"
    defaults: ClassVar[dict[str, float]] = {"noise_std": 0.5}  # the paper gives no scale: a setting
    ranges: ClassVar[dict[str, tuple[float, float]]] = {"noise_std": (0.0, 1e6)}

    def tamper_weights(self, ctx: AttackContext, weights: Weights) -> Weights | None:
        if not self.strikes(ctx):
            return None
        return add_noise(weights, self.noise(ctx, weights))

    def noise(self, ctx: AttackContext, weights: Weights) -> Weights:
        """This round's noise for ``weights`` (shared by colluders): float64 for an integer expert's weights,
        in real units, else the weights' own dtype."""
        gen = ctx.generator("gaussian")
        std = self.params["noise_std"]
        return {key: std * torch.randn(weights[key].shape, generator=gen, dtype=weights[key].dtype
                                       if weights[key].is_floating_point() else torch.float64)
                for key in sorted(weights)}


def add_noise(weights: Weights, noise: Weights) -> Weights:
    """``weights`` + ``noise``; an integer expert's fixed-point weights get it in real units, rounded to their
    format."""
    noisy: Weights = {}
    for key in sorted(weights):
        value = weights[key]
        if value.is_floating_point():
            noisy[key] = value + noise[key].to(value.dtype)
        else:
            noisy[key] = quantize_weights(dequantize_weights(value) + noise[key])
    return noisy
