"""Owns building the probe: seeded experts (initial and after a few SGD steps, so trained-like
weights are covered), S real test samples, and each weight set's output gradient.

The output gradient is the cross-entropy gradient of the weight set's float32 output, computed once
here, so every profile steps with the same gradient, as every edge does on the ledger.

Must not know: profiles, divergence, bounds.
"""

from __future__ import annotations

import torch
from torch import nn

from bmoe.data import Dataset
from bmoe.edge.runtime import Weights
from bmoe.experiments.calibration.compute import Probe
from bmoe.moe.experts import ExpertSpec, build_expert

TRAIN_STEPS = 20  # SGD steps from the initial weights to the "trained" weight set
TRAIN_BATCH = 64
LR = 0.1  # RunConfig.lr: plain SGD


def _weights(module: nn.Module) -> Weights:
    return {name: tensor.detach().clone().contiguous() for name, tensor in module.state_dict().items()}


def _train(module: nn.Module, dataset: Dataset, generator: torch.Generator) -> None:
    optimiser = torch.optim.SGD(module.parameters(), lr=LR)
    for _ in range(TRAIN_STEPS):
        pick = torch.randint(dataset.num_train, (TRAIN_BATCH,), generator=generator)  # (b,)
        loss = nn.functional.cross_entropy(module(dataset.x_train[pick]), dataset.y_train[pick])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def output_grad(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d mean cross-entropy / d output of ``module`` on ``x``: (S, C) float32."""
    with torch.no_grad():
        logits = module(x)  # (S, C)
    probs = torch.softmax(logits, dim=1)  # (S, C)
    return (probs - nn.functional.one_hot(y, logits.shape[1]).to(probs.dtype)) / x.shape[0]  # (S, C)


def build_probe(dataset: Dataset, preset: str, experts: int, samples: int, seed: int) -> Probe:
    """``experts`` seeded experts, each initial and trained, on the first ``samples`` of a seeded test permutation."""
    spec = ExpertSpec(preset, tuple(dataset.x_train.shape[1:]), dataset.num_classes)
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(dataset.num_test, generator=generator)[:samples]  # (S,)
    x, y = dataset.x_test[pick].contiguous(), dataset.y_test[pick]  # (S, *shape), (S,)
    names: list[str] = []
    weight_sets: list[Weights] = []
    grads: list[torch.Tensor] = []
    for expert in range(experts):
        torch.manual_seed(seed * 1009 + expert)
        module = build_expert(spec)
        for state in ("initial", "trained"):
            if state == "trained":
                _train(module, dataset, generator)
            names.append(f"expert{expert}/{state}")
            weight_sets.append(_weights(module))
            grads.append(output_grad(module, x, y))
    return Probe(spec, tuple(names), tuple(weight_sets), x, tuple(grads), LR)


def gaussian_attack(probe: Probe, noise_std: float, seed: int) -> tuple[Weights, ...]:
    """The paper's attack (Sec. V) on every weight set: N(0, noise_std²) added to every weight."""
    generator = torch.Generator().manual_seed(seed + 7919)
    return tuple({key: value + noise_std * torch.randn(value.shape, generator=generator, dtype=value.dtype)
                  for key, value in sorted(weights.items())} for weights in probe.weights)
