"""The paper's attack read as persistent: the noise an edge injects stays in the expert copy it keeps.

The paper: "we let malicious edges inject random Gaussian noise into the employed experts in each round",
and in the traditional framework edge *i* hosts expert *i*. Read that way, an edge keeps the copy it
computes with, and the noise it injected yesterday is still in it today. :class:`GaussianWeightNoise`
(``gaussian``) is the other reading: fresh noise on the weights it downloaded, in the rounds it strikes.

What an edge keeps, per expert, is its **deviation** from the ledger's weights: the sum of the noise it
injected in the rounds it struck while employing that expert. It computes with the ledger's weights plus
the deviation. When the ledger adopts weights this edge produced (its update was accepted: always in the
traditional framework, whose rule accepts the host's update unverified), its copy *is* the ledger's, the
noise now inside it, and the deviation starts again from zero. So:

- traditional training: both readings coincide (the host's noisy update becomes the expert's weights);
- traditional serving: no update, so the noise accumulates round after round in the hosted expert;
- B-MoE: honest edges download the accepted weights, which a minority never moves; the attacker keeps its
  own deviation, accumulating, and colluders (sharing every draw) keep identical ones, so they publish
  identical results, and are outvoted.

The deviation lives in the edge's memory: an attacker process that restarts reloads the ledger's weights
and starts again, as a real edge would. Noise is added at most once per round and expert (a dispute's
escalation computes again with the same copy).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from bmoe.edge.attacks.gaussian import GaussianWeightNoise, add_noise
from bmoe.edge.behaviour import AttackContext, Weights, register
from bmoe.edge.runtime import weights_cid


@register
class PersistentGaussianNoise(GaussianWeightNoise):
    """Gaussian noise that accumulates in the copy of each expert the edge keeps (``noise_std``, per strike)."""

    name: ClassVar[str] = "gaussian_persistent"

    def __init__(self, probability: float = 0.2, **params: float) -> None:
        super().__init__(probability, **params)
        self.deviation: dict[int, Weights] = {}  # expert -> the noise this edge's copy holds beyond the ledger's
        self.produced: dict[int, str] = {}  # expert -> CID of the updated weights this edge last committed
        self.applied: dict[int, tuple[int, Weights | None]] = {}  # expert -> (round, the copy used then)

    def tamper_weights(self, ctx: AttackContext, weights: Weights) -> Weights | None:
        expert = ctx.expert
        done = self.applied.get(expert)
        if done is not None and done[0] == ctx.round:
            return done[1]
        if expert in self.produced and weights_cid(weights) == self.produced[expert]:
            self.deviation.pop(expert, None)  # the ledger holds this edge's own copy, its noise included
        if self.strikes(ctx):
            noise = self.noise(ctx, weights)
            kept = self.deviation.get(expert)
            self.deviation[expert] = noise if kept is None else {k: kept[k] + noise[k] for k in sorted(noise)}
        deviation = self.deviation.get(expert)
        copy = None if deviation is None else add_noise(weights, deviation)
        self.applied[expert] = (ctx.round, copy)
        return copy

    def tamper_update(self, ctx: AttackContext, base: Weights, updated: Weights) -> Weights | None:
        self.produced[ctx.expert] = weights_cid(updated)  # the step from its own copy: what it commits
        return None

    def deviation_norm(self, expert: int) -> float:
        """The L2 norm of the noise this edge's copy of ``expert`` holds beyond the ledger's (0 when none)."""
        kept = self.deviation.get(expert)
        if kept is None:
            return 0.0
        return float(torch.sqrt(sum((value.double() ** 2).sum() for value in kept.values())))
