"""What the decoding tests share: the engine run to its end on some requests, and a caller that counts the calls
it passes on to the model's own experts."""

from __future__ import annotations

import torch

from bmoe.lm.decoding.engine import Completion, DecodingEngine
from bmoe.lm.decoding.expert_calls import ModelExperts
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import MoETransformer
from tests.lm.tiny_lm import CHARACTERS


def decode(ids: list[int]) -> str:
    return "".join(CHARACTERS[i] for i in ids)


class CountingExperts(ModelExperts):
    """The model's experts, each call's layer and experts kept in ``calls``."""

    def __init__(self, model: MoETransformer) -> None:
        super().__init__(model)
        self.calls: list[tuple[int, list[int]]] = []

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        self.calls.append((layer, sorted(routed)))
        return super().__call__(layer, routed)


def run_all(engine: DecodingEngine, requests: list[tuple[list[int], SamplingParams]]) -> list[Completion]:
    """Submit ``requests`` together and decode them to their end; their completions in order."""
    ids = [engine.submit(prompt, params) for prompt, params in requests]
    for _ in engine.events():
        pass
    return [engine.result(request) for request in ids]
