"""Owns the deterministic training-data order shared by all participants of a task.

A ``torch.Generator`` seeded with ``seed`` produces a fresh ``randperm(n_train)``
for every epoch. Round ``r`` receives the next ``batch_size`` indices of the current
permutation; when fewer than ``batch_size`` remain, that partial chunk is dropped and
a new permutation (the next epoch) is drawn. Same seed and sizes -> same order.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from .dataset import Dataset
from .errors import DataError


def task_batches(
    dataset: Dataset, batch_size: int, seed: int, rounds: int
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(round_index, int64 indices into the training set)`` for ``rounds`` rounds."""
    n = dataset.num_train
    if not 1 <= batch_size <= n:
        raise DataError(f"{dataset.name}: batch_size must be in [1, {n}], got {batch_size}")
    if rounds < 0:
        raise DataError(f"{dataset.name}: rounds must be >= 0, got {rounds}")
    return _generate(n, batch_size, seed, rounds)


def _generate(n: int, batch_size: int, seed: int, rounds: int) -> Iterator[tuple[int, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    pos = 0
    for r in range(rounds):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        yield r, perm[pos:pos + batch_size]
        pos += batch_size
