"""Training the language model without the protocol: the reference the B-MoE round is measured against.

One step (:func:`train_step`) is one forward/backward of the whole model on a batch and one AdamW step of every
weight through :func:`bmoe.lm.optim.adamw_step`, the pure function the validators (the trusted part) and the
edges (the experts) call in the B-MoE round; a round with honest edges reproduces these weights as long as
every expert gets tokens in every step (the state here counts one AdamW step for the whole model; the round's
objects, like torch's AdamW, count per part, so an expert no token reached keeps its step there:
``tests/lm/lm_runs.reference_training`` steps per part and matches the round in every case). The
training state is a dict of tensors by the model's parameter names, weights and moments
(``with_moments(model.state_dict())``): it is the truth, the model only the vehicle that computes the gradient.
:class:`LocalTrainer` runs nanoGPT's Shakespeare-char recipe on CPU (batch 12 of 64-token windows, lr 1e-3,
100 warmup steps, cosine decay to 1e-4 over 2,000 steps) and calls back after every step.

Must not know: the protocol, storage, tokenizers, where the text comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from bmoe.lm.model import MoETransformer
from bmoe.lm.optim import MOMENT_1, MOMENT_2, AdamWSettings, Tensors, adamw_step, cosine_lr, weights_of, with_moments
from bmoe.lm.windows import random_windows

StepCallback = Callable[[int, float, float], None]  # (step, loss, lr)


def tied_names(model: MoETransformer) -> dict[str, str]:
    """Each second name of a shared parameter -> the name its gradient is under (tied embeddings:
    ``lm_head.weight`` -> ``model.embed_tokens.weight``)."""
    first = {id(parameter): name for name, parameter in model.named_parameters()}
    return {name: first[id(parameter)] for name, parameter in model.named_parameters(remove_duplicate=False)
            if first[id(parameter)] != name}


def load_weights(model: MoETransformer, state: Tensors) -> None:
    """Make ``state``'s weights the model's parameters (no copy: neither is changed in place afterwards)."""
    weights = weights_of(state)
    missing = [name for name, _ in model.named_parameters() if name not in weights]
    if missing:
        raise ValueError(f"the state has no weight {missing[0]!r} ({len(missing)} of the model's missing)")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if weights[name].shape != parameter.shape:
                raise ValueError(f"the state's {name!r} has shape {tuple(weights[name].shape)}, the model's "
                                 f"{tuple(parameter.shape)}")
            parameter.data = weights[name]


def train_step(model: MoETransformer, state: Tensors | None, x: torch.Tensor, y: torch.Tensor, lr: float,
               settings: AdamWSettings | None = None) -> tuple[float, Tensors]:
    """One step on tokens ``x`` and targets ``y`` (B, T): the loss that was differentiated (cross-entropy plus
    the weighted router losses) and the new state; the model holds the new weights afterwards. ``state`` None
    starts from the model's weights with zero moments; ``settings`` None is :class:`AdamWSettings`' defaults
    (nanoGPT's). A shared (tied) weight steps once, under its first name,
    and its second name follows it. The old state is not changed."""
    if state is None:
        state = with_moments(model.state_dict())
    load_weights(model, state)
    model.train()
    model.zero_grad(set_to_none=True)
    output = model(x, y)
    assert output.loss is not None
    output.loss.backward()
    grads = {name: parameter.grad for name, parameter in model.named_parameters() if parameter.grad is not None}
    new = adamw_step(state, grads, lr, settings or AdamWSettings())
    for alias, name in tied_names(model).items():
        for prefix in ("", MOMENT_1, MOMENT_2):
            if prefix + alias in new:
                new[prefix + alias] = new[prefix + name]
    model.zero_grad(set_to_none=True)
    load_weights(model, new)
    return float(output.loss.detach()), new


@dataclass(frozen=True)
class LocalTrainingSettings:
    """nanoGPT's Shakespeare-char recipe as its README runs it on a CPU."""

    steps: int = 2000  # max_iters = lr_decay_iters
    batch_size: int = 12
    block_size: int | None = None  # None: the model's context (64 by default, nanoGPT's CPU block size)
    max_lr: float = 1e-3
    warmup: int = 100
    min_lr: float = 1e-4
    adamw: AdamWSettings = field(default_factory=AdamWSettings)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.block_size is not None and self.block_size < 1:
            raise ValueError(f"block_size must be positive, got {self.block_size}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be non-negative, got {self.warmup}")
        if not 0 <= self.min_lr <= self.max_lr:
            raise ValueError(f"the learning rates must satisfy 0 <= min_lr <= max_lr, got {self.min_lr}, "
                             f"{self.max_lr}")


class LocalTrainer:
    """A model, its training state and the seeded batch sampler: :meth:`train` steps on a token stream, and may
    be called again to go on (between evaluations, say) where it stopped."""

    def __init__(self, model: MoETransformer, settings: LocalTrainingSettings = LocalTrainingSettings(),
                 seed: int = 0) -> None:
        block_size = settings.block_size or model.config.max_position_embeddings
        if block_size > model.config.max_position_embeddings:
            raise ValueError(f"block_size {block_size} is longer than the model's context "
                             f"({model.config.max_position_embeddings})")
        self.model, self.settings, self.block_size = model, settings, block_size
        self.state = with_moments(model.state_dict())
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0  # steps taken

    def lr(self, step: int) -> float:
        s = self.settings
        return cosine_lr(step, s.max_lr, s.warmup, s.steps, s.min_lr)

    def train(self, ids: torch.Tensor, steps: int | None = None, on_step: StepCallback | None = None) -> list[float]:
        """``steps`` more steps (the rest of ``settings.steps`` by default) on windows of the token stream
        ``ids`` (1-D); the loss of each. ``on_step(step, loss, lr)`` after each."""
        count = self.settings.steps - self.step if steps is None else steps
        losses = []
        for _ in range(count):
            x, y = random_windows(ids, self.settings.batch_size, self.block_size, self.generator)  # (B, T) each
            lr = self.lr(self.step)
            loss, self.state = train_step(self.model, self.state, x, y, lr, self.settings.adamw)
            losses.append(loss)
            if on_step is not None:
                on_step(self.step, loss, lr)
            self.step += 1
        return losses
