"""Windows of a token stream: the (x, y) pairs a language model trains and is evaluated on.

A window is ``block_size`` consecutive tokens ``x`` and the same tokens shifted by one, ``y`` (the next token of
each position). :func:`random_windows` draws a batch at seeded random offsets (nanoGPT's ``get_batch``);
:func:`consecutive_windows` cuts the stream into non-overlapping windows, every token but the first predicted
exactly once (a full pass over a validation text).

Must not know: tokenizers, corpora, the model.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def _check_stream(ids: torch.Tensor, block_size: int) -> None:
    if ids.dim() != 1:
        raise ValueError(f"the token ids must be one stream (1-D), got shape {tuple(ids.shape)}")
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")


def random_windows(ids: torch.Tensor, batch_size: int, block_size: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` windows of ``block_size`` tokens at offsets drawn from ``generator``: x, y (B, T)."""
    _check_stream(ids, block_size)
    if len(ids) <= block_size:
        raise ValueError(f"a stream of {len(ids)} tokens has no window of {block_size} tokens and a next token")
    starts = torch.randint(len(ids) - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = starts[:, None] + torch.arange(block_size)  # (B, T)
    return ids[offsets], ids[offsets + 1]


def consecutive_windows(ids: torch.Tensor, block_size: int,
                        batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Non-overlapping windows from the start of the stream, ``batch_size`` at a time: x, y (b, T), then the
    tail shorter than ``block_size`` as (1, t) if there is one. Every token after the first is a target once."""
    _check_stream(ids, block_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    full = (len(ids) - 1) // block_size  # windows of block_size tokens
    inputs = ids[:full * block_size].view(full, block_size)  # (n, T)
    targets = ids[1:full * block_size + 1].view(full, block_size)  # (n, T)
    for start in range(0, full, batch_size):
        yield inputs[start:start + batch_size], targets[start:start + batch_size]
    tail = full * block_size
    if tail < len(ids) - 1:
        yield ids[tail:-1][None, :], ids[tail + 1:][None, :]  # (1, t)
