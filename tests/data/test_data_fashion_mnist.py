"""Fashion-MNIST loader on generated IDX files, its errors, and the real Debian files if installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bmoe.data import DataError, load_dataset, load_fashion_mnist, write_idx
from bmoe.data.fashion_mnist import DEFAULT_DIR, MEAN, STD

STEMS = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
)


def _write_fake(directory, n_train=12, n_test=5, compress=(True, True, True, True), seed=0):
    rng = np.random.default_rng(seed)
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )
    for stem, arr, gz in zip(STEMS, arrays, compress, strict=True):
        write_idx(directory / (stem + ".gz" if gz else stem), arr, gzip=gz)
    return arrays


@pytest.mark.parametrize("compress", [(True, True, True, True), (False, False, False, False),
                                      (True, False, False, True)])
def test_loads_generated_files(tmp_path, compress):
    xtr, ytr, xte, yte = _write_fake(tmp_path, compress=compress)
    ds = load_fashion_mnist(tmp_path)
    assert ds.name == "fashion-mnist" and ds.num_classes == 10
    assert ds.x_train.shape == (12, 1, 28, 28) and ds.x_test.shape == (5, 1, 28, 28)
    assert ds.input_shape == (1, 28, 28) and ds.input_dim == 784
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.y_train.tolist() == ytr.tolist() and ds.y_test.tolist() == yte.tolist()
    expected = (xtr[:, None].astype(np.float32) / 255 - MEAN) / STD
    np.testing.assert_allclose(ds.x_train.numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds.x_test.numpy(), (xte[:, None] / 255 - MEAN) / STD, rtol=1e-5, atol=1e-5)


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match=r"data directory .* not found .*dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "absent")


@pytest.mark.parametrize("missing", STEMS)
def test_missing_file_message(tmp_path, missing):
    _write_fake(tmp_path)
    (tmp_path / f"{missing}.gz").unlink()
    with pytest.raises(DataError) as info:
        load_fashion_mnist(tmp_path)
    assert str(info.value) == (f"fashion-mnist: {tmp_path / missing}(.gz) not found "
                               "(install Debian package dataset-fashion-mnist or pass --data-dir)")


def test_count_mismatch(tmp_path):
    _write_fake(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8), gzip=True)
    with pytest.raises(DataError, match=r"has 5 images but .*t10k-labels-idx1-ubyte\.gz has 4 labels"):
        load_fashion_mnist(tmp_path)


def test_wrong_image_dims(tmp_path):
    _write_fake(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((12, 28, 27), np.uint8), gzip=True)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: expected uint8 images of shape"):
        load_fashion_mnist(tmp_path)


def test_wrong_label_dtype(tmp_path):
    _write_fake(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(12, np.int32), gzip=True)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: expected 1-D uint8 labels"):
        load_fashion_mnist(tmp_path)


def test_label_out_of_range(tmp_path):
    _write_fake(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(5, 10, np.uint8), gzip=True)
    with pytest.raises(DataError, match="label 10 outside"):
        load_fashion_mnist(tmp_path)


def test_corrupt_file_is_prefixed_with_dataset(tmp_path):
    _write_fake(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(DataError) as info:
        load_fashion_mnist(tmp_path)
    msg = str(info.value)
    assert msg.startswith("fashion-mnist: ") and "train-images-idx3-ubyte.gz" in msg and "\n" not in msg


def test_registry_passes_data_dir(tmp_path):
    _write_fake(tmp_path, n_train=20, n_test=7)
    ds = load_dataset("fashion-mnist", data_dir=tmp_path, limit_train=6)
    assert ds.x_train.shape == (6, 1, 28, 28) and ds.x_test.shape == (7, 1, 28, 28)


@pytest.mark.skipif(not DEFAULT_DIR.is_dir(),
                    reason=f"{DEFAULT_DIR} absent: Debian package dataset-fashion-mnist not installed")
def test_real_debian_files():
    ds = load_fashion_mnist()
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.num_classes == 10
    assert torch.bincount(ds.y_train).tolist() == [6000] * 10
    assert torch.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.y_train[:4].tolist() == [9, 0, 0, 3] and ds.y_test[:4].tolist() == [9, 2, 1, 1]
    # the hard-coded constants standardise the real training split
    assert abs(ds.x_train.mean().item()) < 1e-3 and abs(ds.x_train.std().item() - 1) < 1e-3
