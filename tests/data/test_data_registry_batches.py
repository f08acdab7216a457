"""Registry lookup / limits and the deterministic task batch order."""

from __future__ import annotations

import pytest
import torch

from bmoe.data import DATASETS, DataError, load_dataset, make_synthetic, task_batches


def test_names():
    assert DATASETS == ("digits", "fashion-mnist", "cifar10", "synthetic")


def test_unknown_name_lists_valid_ones():
    with pytest.raises(DataError) as info:
        load_dataset("mnist")
    valid = "digits, fashion-mnist, cifar10, synthetic"
    assert str(info.value) == f"unknown dataset 'mnist'; valid names: {valid}"


def test_limits_are_seeded_prefixes():
    full = load_dataset("digits", seed=0)
    a = load_dataset("digits", seed=0, limit_train=50, limit_test=10)
    b = load_dataset("digits", seed=0, limit_train=50, limit_test=10)
    small = load_dataset("digits", seed=0, limit_train=20)
    assert a.x_train.shape == (50, 1, 8, 8) and a.x_test.shape == (10, 1, 8, 8)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert torch.equal(small.x_train, a.x_train[:20]) and torch.equal(small.x_test, full.x_test)
    gen = torch.Generator().manual_seed(0)
    keep = torch.randperm(full.num_train, generator=gen)[:50]
    assert torch.equal(a.x_train, full.x_train[keep])  # documented: a prefix of a seeded shuffle
    assert not torch.equal(a.x_train, full.x_train[:50])


def test_limit_larger_than_split_keeps_everything():
    ds = load_dataset("synthetic", limit_train=10**6)
    assert ds.num_train == make_synthetic().num_train


@pytest.mark.parametrize("limit", [0, -3, 2.5, True])
def test_bad_limit(limit):
    with pytest.raises(DataError, match="limit_train must be a positive integer"):
        load_dataset("synthetic", limit_train=limit)


def test_synthetic_uses_seed():
    assert torch.equal(load_dataset("synthetic", seed=5).x_train, make_synthetic(seed=5).x_train)
    assert not torch.equal(make_synthetic(seed=5).x_train, load_dataset("synthetic", seed=6).x_train)


def _order(ds, batch_size, seed, rounds):
    return [(r, idx.tolist()) for r, idx in task_batches(ds, batch_size, seed, rounds)]


def test_batches_deterministic_and_seeded():
    ds = make_synthetic(n_train=40, n_test=4)
    assert _order(ds, 8, 1, 12) == _order(ds, 8, 1, 12)
    assert _order(ds, 8, 1, 12) != _order(ds, 8, 2, 12)
    rounds = [r for r, _ in _order(ds, 8, 1, 12)]
    assert rounds == list(range(12))


def test_batches_wrap_and_drop_partial_chunk():
    ds = make_synthetic(n_train=10, n_test=4)
    order = _order(ds, 3, 0, 7)  # 3 batches per epoch (last index of each epoch dropped)
    gen = torch.Generator().manual_seed(0)
    perms = [torch.randperm(10, generator=gen).tolist() for _ in range(3)]
    expected = [perms[e][3 * k: 3 * k + 3] for e in range(3) for k in range(3)][:7]
    assert [idx for _, idx in order] == expected
    epoch0 = [i for _, idx in order[:3] for i in idx]
    assert len(set(epoch0)) == 9  # no repeats within an epoch
    assert all(idx.dtype == torch.int64 for _, idx in task_batches(ds, 3, 0, 4))


def test_batches_full_epoch_batch():
    ds = make_synthetic(n_train=6, n_test=2)
    order = _order(ds, 6, 0, 3)
    assert all(sorted(idx) == list(range(6)) for _, idx in order)
    assert order[0][1] != order[1][1] or order[1][1] != order[2][1]  # reshuffled per epoch


@pytest.mark.parametrize(("batch_size", "rounds"), [(0, 1), (11, 1), (2, -1)])
def test_batches_bad_arguments(batch_size, rounds):
    with pytest.raises(DataError):
        task_batches(make_synthetic(n_train=10, n_test=2), batch_size, 0, rounds)
