"""AdamW as a pure function of tensors, so whoever holds a part of the model steps it the same way.

A language model does not train with plain SGD in any reasonable time, so bmoe's language models step with AdamW
(Loshchilov & Hutter, 2019) and nanoGPT's learning-rate schedule. AdamW is element-wise: stepping the trusted part
on the validators and each expert on its edges, with the same gradients, is exactly one AdamW step of the whole
model (nanoGPT's global gradient-norm clipping would couple the parts, so it is not used). An expert's object in
storage holds its weights and its moments (``adam.m.*``, ``adam.v.*``, ``adam.step``): the update an edge commits
is a deterministic function of the object, the gradient and the learning rate, so honest edges agree on its bytes.

Must not know: the model's shape, the protocol, storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

Tensors = dict[str, torch.Tensor]
MOMENT_1 = "adam.m."
MOMENT_2 = "adam.v."
STEP = "adam.step"
MAX_STEPS = 1 << 40


@dataclass(frozen=True)
class AdamWSettings:
    """nanoGPT's Shakespeare-char settings: betas (0.9, 0.99), weight decay 0.1 on matrices only."""

    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.1


def with_moments(weights: Tensors) -> Tensors:
    """``weights`` and zero moments, step 0: a part of the model before its first step."""
    state = dict(weights)
    for name, tensor in weights.items():
        state[MOMENT_1 + name] = torch.zeros_like(tensor, dtype=torch.float32)
        state[MOMENT_2 + name] = torch.zeros_like(tensor, dtype=torch.float32)
    state[STEP] = torch.zeros((), dtype=torch.int64)
    return state


def weights_of(state: Tensors) -> Tensors:
    """The weights of a state (its moments and step left out)."""
    return {name: tensor for name, tensor in state.items() if not name.startswith(("adam.", STEP))}


def adamw_step(state: Tensors, grads: Tensors, lr: float, settings: AdamWSettings = AdamWSettings()) -> Tensors:
    """One AdamW step of every weight of ``state`` with ``grads`` (by weight name; a weight without a gradient
    keeps its value and moments): the new state, a new dict. Matrices decay, vectors (norms) do not."""
    step = min(max(int(state[STEP]), 0), MAX_STEPS) + 1  # an object's step, read defensively (anyone may send one)
    correction1 = 1.0 - settings.beta1 ** step
    correction2 = 1.0 - settings.beta2 ** step
    new: Tensors = {STEP: torch.tensor(step, dtype=torch.int64)}
    with torch.no_grad():
        for name, weight in weights_of(state).items():
            m, v = state[MOMENT_1 + name], state[MOMENT_2 + name]
            grad = grads.get(name)
            if grad is None:
                new[name], new[MOMENT_1 + name], new[MOMENT_2 + name] = weight, m, v
                continue
            grad = grad.to(torch.float32)
            m = settings.beta1 * m + (1.0 - settings.beta1) * grad
            v = settings.beta2 * v + (1.0 - settings.beta2) * grad * grad
            decayed = weight * (1.0 - lr * settings.weight_decay) if weight.dim() >= 2 else weight
            denominator = (v / correction2).sqrt() + settings.eps
            new[name] = (decayed - (lr / correction1) * m / denominator).to(weight.dtype)
            new[MOMENT_1 + name], new[MOMENT_2 + name] = m, v
    return new


def cosine_lr(step: int, max_lr: float, warmup: int, total: int, min_lr: float) -> float:
    """nanoGPT's schedule: linear warmup over ``warmup`` steps, cosine decay to ``min_lr`` at ``total``."""
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)
