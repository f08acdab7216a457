"""The batches of a language model's run: seeded random windows, the same wherever they are drawn.

An in-process run (``LMSession``) and a deployment's publisher (``bmoe lm train --cluster``) draw round ``step``'s
batch from the run's seed alone, so both train on the same windows and a seeded cluster's chain is the in-process
run's.

Must not know: the protocol, the disk, click.
"""

from __future__ import annotations

from typing import Any

import torch

from bmoe.lm.model import MoETransformer
from bmoe.lm.windows import random_windows

TRAINING, VALIDATION = 0, 1  # the streams: training rounds, validation points


def seeded_batch(seed: int, settings: Any, ids: torch.Tensor, context: int, step: int,
                 stream: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``settings.sequences`` random windows of ``ids`` (B, T = context) and their next tokens: the seed, the
    stream and the step fix them."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + stream) * 10_000_019 + step)
    return random_windows(ids, settings.sequences, context, generator)


def validation_loss(model: MoETransformer, seed: int, settings: Any, ids: torch.Tensor) -> float:
    """``model``'s mean cross-entropy (nats per token) on the run's ``settings.validation_batches`` seeded held-out
    batches of ``ids``: the curve every run records, in process or on a deployment."""
    context = model.config.max_position_embeddings
    losses = []
    with torch.no_grad():
        for index in range(settings.validation_batches):
            x, y = seeded_batch(seed, settings, ids, context, index, VALIDATION)
            out = model(x, y)
            assert out.cross_entropy is not None
            losses.append(float(out.cross_entropy))
    return sum(losses) / len(losses)
