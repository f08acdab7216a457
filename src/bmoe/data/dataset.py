"""Owns the in-memory :class:`Dataset` container and the shared normalisation helper.

Normalisation convention (all loaders): raw pixel values are scaled to [0, 1]
(divided by their maximum possible value: 255 for 8-bit images, 16 for sklearn's
digits), then standardised per channel as ``(x - mean[c]) / std[c]`` with FIXED
constants per dataset, computed once from that dataset's training split and
hard-coded in its loader (so train and test always share the same transform and
no statistics are recomputed at run time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .errors import DataError


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset held fully in memory.

    ``x_*`` are float32 tensors shaped ``(n, C, H, W)`` (already normalised),
    ``y_*`` are int64 tensors shaped ``(n,)`` with values in ``[0, num_classes)``.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if x.dtype != torch.float32 or y.dtype != torch.int64:
                raise DataError(f"{self.name}: {split} split must be float32 images and int64 labels, "
                                f"got {x.dtype} and {y.dtype}")
            if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
                raise DataError(f"{self.name}: {split} split has {tuple(x.shape)} images "
                                f"but {tuple(y.shape)} labels")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise DataError(f"{self.name}: {split} labels outside [0, {self.num_classes})")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(f"{self.name}: train images {tuple(self.x_train.shape[1:])} and test images "
                            f"{tuple(self.x_test.shape[1:])} differ in shape")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, ``(C, H, W)`` for images."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def input_dim(self) -> int:
        """Number of scalar features per example (``C * H * W``)."""
        return math.prod(self.input_shape)

    @property
    def num_train(self) -> int:
        """Number of training examples."""
        return int(self.y_train.shape[0])

    @property
    def num_test(self) -> int:
        """Number of test examples."""
        return int(self.y_test.shape[0])


def normalise(
    images: np.ndarray, max_value: float, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """Return float32 ``((images / max_value) - mean[c]) / std[c]`` for images shaped ``(n, C, H, W)``.

    ``mean``/``std`` have one entry per channel (or a single entry broadcast to all).
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32)
    x.div_(max_value)
    shape = (1, -1, 1, 1) if len(mean) > 1 else (1,)
    x.sub_(torch.tensor(mean, dtype=torch.float32).reshape(shape))
    x.div_(torch.tensor(std, dtype=torch.float32).reshape(shape))
    return x


def labels_tensor(labels: np.ndarray | Sequence[int]) -> torch.Tensor:
    """Return labels as a 1-D int64 tensor."""
    return torch.as_tensor(np.asarray(labels, dtype=np.int64))
