"""Owns turning text into the token tensor a language model trains on, and sampling windows of it.

:func:`random_windows` is nanoGPT's ``get_batch``: ``B`` windows of ``T + 1`` consecutive tokens at uniformly
random offsets, the first ``T`` as input and the last ``T`` as targets. The offsets come from the caller's
``torch.Generator``, so a seed fixes every batch.

This module must not know where the text comes from or which tokenizer made the ids.
"""

from __future__ import annotations

import torch

from bmoe.data.errors import DataError

from .tokenizer import Tokenizer


def encode_corpus(tokenizer: Tokenizer, text: str) -> torch.Tensor:
    """``text``'s token ids, ``(n,)`` int64."""
    return torch.tensor(tokenizer.encode(text), dtype=torch.int64)


def random_windows(ids: torch.Tensor, batch_size: int, block_size: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)``, each ``(B, T)`` int64: ``B`` random windows of ``ids`` and the same windows one token on."""
    if ids.dim() != 1 or ids.numel() <= block_size:
        raise DataError(f"need a 1-D token tensor longer than the block size {block_size}, got shape "
                        f"{tuple(ids.shape)}")
    if batch_size < 1 or block_size < 1:
        raise DataError(f"batch size and block size must be positive, got {batch_size} and {block_size}")
    starts = torch.randint(ids.numel() - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = starts[:, None] + torch.arange(block_size)[None, :]  # (B, T)
    return ids[offsets], ids[offsets + 1]  # (B, T), (B, T)
