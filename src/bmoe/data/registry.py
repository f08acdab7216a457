"""Owns dataset lookup by name and the optional deterministic size limits.

``limit_train`` / ``limit_test``: one ``torch.Generator`` seeded with ``seed`` draws
``randperm(n_train)`` then ``randperm(n_test)``; a limited split keeps the first
``min(limit, n)`` indices of its permutation (so the subset is a seeded random sample,
stable for a given seed, and a smaller limit is a prefix of a larger one). A split
with ``limit=None`` is left untouched, in its original order.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .cifar10 import load_cifar10
from .dataset import Dataset
from .digits import load_digits_dataset
from .errors import DataError
from .fashion_mnist import load_fashion_mnist
from .synthetic import make_synthetic

DATASETS = ("digits", "fashion-mnist", "cifar10", "synthetic")


def _load(name: str, data_dir: Path | None, seed: int) -> Dataset:
    if name == "digits":
        return load_digits_dataset(seed=seed)
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir)
    if name == "cifar10":
        if data_dir is None:
            raise DataError("cifar10: no data directory given (download the python version from the "
                            "official CIFAR-10 page and pass --data-dir)")
        return load_cifar10(data_dir)
    return make_synthetic(seed=seed)


def _check_limit(name: str, which: str, limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"{name}: {which} must be a positive integer or None, got {limit!r}")


def load_dataset(name: str, data_dir: Path | None = None, seed: int = 0,
                 limit_train: int | None = None, limit_test: int | None = None) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`), optionally limited in size.

    ``data_dir`` is used by ``fashion-mnist`` (default: the Debian package directory)
    and ``cifar10`` (required); ``digits`` and ``synthetic`` ignore it and use ``seed``
    for their split / generation. Raises :class:`DataError` for unknown names.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    _check_limit(name, "limit_train", limit_train)
    _check_limit(name, "limit_test", limit_test)
    return apply_limits(_load(name, None if data_dir is None else Path(data_dir), seed), seed, limit_train, limit_test)


def apply_limits(ds: Dataset, seed: int, limit_train: int | None, limit_test: int | None) -> Dataset:
    """``ds`` with each limited split cut to a seeded random sample (see the module docstring)."""
    if limit_train is None and limit_test is None:
        return ds
    gen = torch.Generator().manual_seed(seed)
    train_perm = torch.randperm(ds.num_train, generator=gen)
    test_perm = torch.randperm(ds.num_test, generator=gen)
    changes = {}
    if limit_train is not None:
        keep = train_perm[:limit_train]
        changes.update(x_train=ds.x_train[keep], y_train=ds.y_train[keep])
    if limit_test is not None:
        keep = test_perm[:limit_test]
        changes.update(x_test=ds.x_test[keep], y_test=ds.y_test[keep])
    return dataclasses.replace(ds, **changes)
