"""A Byzantine validator of a language model's run that tampers with the aggregates it records when it builds a
block (the paper's scenario 1, as ``protocol/byzantine_validator.py`` for a classifier).

As the proposer of a task's block it records a manipulated aggregate: a forward task's mixed expert output (the
classifier's tampering, inherited) and a backward task's summed dL/d(input), each with its features reversed, so
the block's ``output_cid`` is not what the accepted results give. What it computes for the round (the stream, the
loss, the trusted part's step) stays honest: only the replay of its block by the other validators exposes it.
"""

from __future__ import annotations

import torch

from bmoe.moe.gate import Routing
from bmoe.protocol.byzantine_validator import TamperingValidator
from bmoe.protocol.lm.layers import LayerPass
from bmoe.protocol.lm.validator import LMValidator


class TamperingLMValidator(TamperingValidator, LMValidator):
    def mixed(self, layer: LayerPass, outputs: dict[int, torch.Tensor], train: bool) -> torch.Tensor:
        return super().mixed(layer, outputs, train).flip(dims=(1,))  # (n, d), each token's features reversed

    def summed(self, routing: Routing, groups: dict[int, torch.Tensor],
               outputs: dict[int, torch.Tensor]) -> torch.Tensor:
        return super().summed(routing, groups, outputs).flip(dims=(1,))  # (n, d), each token's features reversed
