"""Digits loader, synthetic generator and the Dataset container."""

from __future__ import annotations

import pytest
import torch

from bmoe.data import DataError, Dataset, load_digits_dataset, make_synthetic


def test_digits_shapes_and_normalisation():
    ds = load_digits_dataset()
    assert ds.name == "digits" and ds.num_classes == 10
    assert ds.x_train.shape == (1438, 1, 8, 8) and ds.x_test.shape == (359, 1, 8, 8)
    assert ds.input_shape == (1, 8, 8) and ds.input_dim == 64
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert set(ds.y_train.tolist()) == set(range(10))
    # constants were computed on this default training split
    assert abs(ds.x_train.mean().item()) < 1e-4 and abs(ds.x_train.std().item() - 1) < 1e-3


def test_digits_split_is_deterministic_and_seeded():
    a, b, c = load_digits_dataset(seed=1), load_digits_dataset(seed=1), load_digits_dataset(seed=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_test, c.y_test)
    # train and test are disjoint and cover the data set
    assert a.num_train + a.num_test == 1797
    assert load_digits_dataset(test_fraction=0.5).num_test == round(1797 * 0.5)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1e-6])
def test_digits_bad_fraction(fraction):
    with pytest.raises(DataError, match="digits: test_fraction"):
        load_digits_dataset(test_fraction=fraction)


def test_synthetic_shapes():
    ds = make_synthetic(n_train=50, n_test=20, num_classes=3, shape=(3, 4, 5), seed=7)
    assert ds.x_train.shape == (50, 3, 4, 5) and ds.x_test.shape == (20, 3, 4, 5)
    assert ds.input_dim == 60 and ds.num_classes == 3
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert int(ds.y_train.max()) < 3 and int(ds.y_train.min()) >= 0


def test_synthetic_determinism():
    a = make_synthetic(100, 30, 4, (1, 8, 8), seed=3)
    b = make_synthetic(100, 30, 4, (1, 8, 8), seed=3)
    c = make_synthetic(100, 30, 4, (1, 8, 8), seed=4)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.x_train, c.x_train)


def test_synthetic_is_learnable():
    """Nearest-class-mean on train separates the test set far above chance."""
    ds = make_synthetic(400, 200, 4, (1, 8, 8), seed=0)
    xtr, xte = ds.x_train.flatten(1), ds.x_test.flatten(1)
    means = torch.stack([xtr[ds.y_train == k].mean(0) for k in range(4)])
    accuracy = (torch.cdist(xte, means).argmin(1) == ds.y_test).float().mean().item()
    assert accuracy > 0.9


@pytest.mark.parametrize("kwargs", [{"n_train": 0}, {"num_classes": 1}, {"shape": (1, 0, 8)}, {"shape": ()}])
def test_synthetic_bad_arguments(kwargs):
    with pytest.raises(DataError, match="synthetic: "):
        make_synthetic(**kwargs)


def test_dataset_is_frozen_and_validated():
    ds = make_synthetic(10, 5, 2, (1, 2, 2))
    with pytest.raises(AttributeError):
        ds.name = "other"  # type: ignore[misc]
    with pytest.raises(DataError, match="float32"):
        Dataset("d", ds.x_train.double(), ds.y_train, ds.x_test, ds.y_test, 2)
    with pytest.raises(DataError, match="train split has"):
        Dataset("d", ds.x_train, ds.y_train[:-1], ds.x_test, ds.y_test, 2)
    with pytest.raises(DataError, match="labels outside"):
        Dataset("d", ds.x_train, ds.y_train + 5, ds.x_test, ds.y_test, 2)
    with pytest.raises(DataError, match="differ in shape"):
        Dataset("d", ds.x_train, ds.y_train, ds.x_test.reshape(5, 4, 1, 1), ds.y_test, 2)
