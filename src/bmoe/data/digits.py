"""Owns the offline default dataset: scikit-learn's bundled 8x8 handwritten digits.

1797 images with pixel values 0..16, 10 classes, shipped inside scikit-learn (no
download). The train/test split is a seeded ``torch.randperm``: the first
``round(n * test_fraction)`` permuted indices are the test set, the rest train.
Images become float32 ``(n, 1, 8, 8)``: ``(pixel / 16 - MEAN) / STD``.
"""

from __future__ import annotations

import numpy as np
import torch

from .dataset import Dataset, labels_tensor, normalise
from .errors import DataError

NAME = "digits"
NUM_CLASSES = 10
#: Mean / population std of the pixels (scaled to [0, 1]) of the default training
#: split (``test_fraction=0.2, seed=0``); used unchanged for every split and seed.
MEAN = 0.3056023
STD = 0.3760530


def load_digits_dataset(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load sklearn's digits with a deterministic ``seed``-driven train/test split."""
    from sklearn.datasets import load_digits  # local import: sklearn is slow to import

    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"{NAME}: test_fraction must be in (0, 1), got {test_fraction}")
    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)[:, None]  # (n, 1, 8, 8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    n = labels.shape[0]
    n_test = round(n * test_fraction)
    if not 0 < n_test < n:
        raise DataError(f"{NAME}: test_fraction {test_fraction} leaves an empty split of {n} examples")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    return Dataset(
        name=NAME,
        x_train=normalise(images[train_idx], 16.0, [MEAN], [STD]),
        y_train=labels_tensor(labels[train_idx]),
        x_test=normalise(images[test_idx], 16.0, [MEAN], [STD]),
        y_test=labels_tensor(labels[test_idx]),
        num_classes=NUM_CLASSES,
    )
