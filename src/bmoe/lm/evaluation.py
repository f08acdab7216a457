"""How well a language model predicts a token stream: mean cross-entropy in nats per token.

:func:`evaluate` averages over seeded random windows (nanoGPT's ``estimate_loss``: cheap, and the same windows
for every model given the same seed); :func:`evaluate_all` makes one deterministic pass over non-overlapping
windows, every token after the first predicted once (a token at the start of a window sees no context, so it is
a little above what a sliding window would give). Both run without gradients, the model in eval mode (it has no
dropout, so the mode changes nothing but is restored).

Must not know: training, the protocol, tokenizers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from bmoe.lm.model import MoETransformer
from bmoe.lm.windows import consecutive_windows, random_windows


@contextmanager
def inference(model: MoETransformer) -> Iterator[None]:
    """No gradients and eval mode inside; the model's mode restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _summed_nats(model: MoETransformer, windows: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, int]:
    """The summed cross-entropy (nats) over every target of ``windows`` (x, y (B, T) each) and the count."""
    total, count = 0.0, 0
    with inference(model):
        for x, y in windows:
            logits = model(x).logits  # (B, T, V)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1),
                                           reduction="sum"))
            count += y.numel()
    return total, count


def evaluate(model: MoETransformer, ids: torch.Tensor, block_size: int, batches: int, batch_size: int,
             seed: int) -> float:
    """Mean cross-entropy (nats per token) over ``batches`` batches of ``batch_size`` windows of ``block_size``
    tokens of ``ids`` (1-D), drawn by a generator seeded with ``seed``."""
    if batches < 1:
        raise ValueError(f"batches must be positive, got {batches}")
    generator = torch.Generator().manual_seed(seed)
    windows = (random_windows(ids, batch_size, block_size, generator) for _ in range(batches))
    total, count = _summed_nats(model, windows)
    return total / count


def evaluate_all(model: MoETransformer, ids: torch.Tensor, block_size: int, batch_size: int = 64) -> float:
    """Mean cross-entropy (nats per token) over every token of ``ids`` (1-D) after the first, in
    non-overlapping windows of ``block_size`` tokens, ``batch_size`` windows per forward pass."""
    if len(ids) < 2:
        raise ValueError(f"a stream of {len(ids)} tokens has nothing to predict")
    total, count = _summed_nats(model, consecutive_windows(ids, block_size, batch_size))
    return total / count


def bits_per_token(nats: float) -> float:
    """A cross-entropy in nats as bits (bits per character for a character-level model)."""
    return nats / math.log(2)
