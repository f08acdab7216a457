"""Owns the synthetic Gaussian-clusters dataset used by fast tests and smoke runs.

Each class ``k`` has a centre ``c_k ~ N(0, separation^2 I)`` in the flattened input
space; an example of class ``k`` is ``c_k + N(0, noise^2 I)`` reshaped to ``shape``.
Labels are uniform over classes. Everything comes from one ``torch.Generator``
seeded with ``seed`` (centres, then train labels/noise, then test labels/noise), so
the same arguments always give bit-identical tensors. Values are already roughly
standardised, so no further normalisation is applied.
"""

from __future__ import annotations

import math

import torch

from .dataset import Dataset
from .errors import DataError

NAME = "synthetic"


def make_synthetic(n_train: int = 512, n_test: int = 128, num_classes: int = 4,
                   shape: tuple[int, ...] = (1, 8, 8), seed: int = 0, *,
                   separation: float = 1.0, noise: float = 1.0) -> Dataset:
    """Return a deterministic Gaussian-clusters dataset with images shaped ``(n, *shape)``."""
    if n_train < 1 or n_test < 1:
        raise DataError(f"{NAME}: n_train and n_test must be >= 1, got {n_train} and {n_test}")
    if num_classes < 2:
        raise DataError(f"{NAME}: num_classes must be >= 2, got {num_classes}")
    if not shape or any(d < 1 for d in shape):
        raise DataError(f"{NAME}: shape must be non-empty positive dims, got {shape}")
    dim = math.prod(shape)
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=gen) * separation

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(num_classes, (n,), generator=gen, dtype=torch.int64)
        x = centres[y] + noise * torch.randn(n, dim, generator=gen)
        return x.reshape(n, *shape).to(torch.float32), y

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    return Dataset(NAME, x_train, y_train, x_test, y_test, num_classes)
