"""CIFAR-10 pickle loader: official-format batches, newer protocols, errors, restricted unpickling."""

from __future__ import annotations

import os
import pickle
import pickletools

import numpy as np
import pytest

from bmoe.data import DataError, load_cifar10, load_dataset, write_cifar10_batches
from bmoe.data.cifar10 import MEAN, STD, load_batch


def _arrays(n_train=23, n_test=7, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n_train),
            rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n_test))


def _globals(blob: bytes) -> list[str]:
    return [arg for op, arg, _ in pickletools.genops(blob) if op.name == "GLOBAL"]


def test_protocol2_writer_matches_official_format(tmp_path):
    write_cifar10_batches(tmp_path, *_arrays())
    blob = (tmp_path / "data_batch_1").read_bytes()
    assert blob[:3] == b"\x80\x02}"  # protocol 2, a dict
    assert _globals(blob) == ["numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"]
    ops = {op.name for op, _, _ in pickletools.genops(blob)}
    assert "SHORT_BINSTRING" in ops and "BINSTRING" in ops  # Python-2 str opcodes, as in the real files
    assert not ops & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES", "SHORT_BINBYTES"}
    batch = pickle.loads(blob, encoding="bytes")
    assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (4, 3072)
    assert isinstance(batch[b"labels"], list)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_loads_generated_batches(tmp_path, protocol):
    xtr, ytr, xte, yte = _arrays()
    write_cifar10_batches(tmp_path, xtr, ytr, xte, yte, protocol=protocol)
    ds = load_cifar10(tmp_path)
    assert ds.name == "cifar10" and ds.num_classes == 10
    assert ds.x_train.shape == (23, 3, 32, 32) and ds.x_test.shape == (7, 3, 32, 32)
    assert ds.input_shape == (3, 32, 32) and ds.input_dim == 3072
    assert ds.y_train.tolist() == ytr.tolist() and ds.y_test.tolist() == yte.tolist()
    mean, std = np.array(MEAN).reshape(1, 3, 1, 1), np.array(STD).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(ds.x_train.numpy(), (xtr / 255 - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds.x_test.numpy(), (xte / 255 - mean) / std, rtol=1e-5, atol=1e-5)


def test_channel_planes_layout(tmp_path):
    """Row-major R, G, B planes: a flat row whose first 1024 bytes are 255 is a pure-red image."""
    flat = np.zeros((5, 3072), np.uint8)
    flat[:, :1024] = 255
    flat[:, 1024 + 33] = 255  # green plane, row 1, column 1
    write_cifar10_batches(tmp_path, flat, np.zeros(5, int), flat[:1], np.zeros(1, int))
    ds = load_cifar10(tmp_path)
    raw = ds.x_train[0].numpy() * np.array(STD).reshape(3, 1, 1) + np.array(MEAN).reshape(3, 1, 1)
    assert np.allclose(raw[0], 1.0, atol=1e-5)
    assert np.isclose(raw[1, 1, 1], 1.0, atol=1e-5) and np.isclose(raw[1, 1, 2], 0.0, atol=1e-5)
    assert np.allclose(raw[2], 0.0, atol=1e-5)


def test_loads_python3_protocol2_repickle(tmp_path):
    """Python 3's own protocol-2 pickles carry the array bytes via ``_codecs.encode``."""
    data = np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072)
    blob = pickle.dumps({b"data": data, b"labels": [3, 4]}, protocol=2)
    assert "_codecs encode" in _globals(blob)
    (tmp_path / "b").write_bytes(blob)
    images, labels = load_batch(tmp_path / "b")
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [3, 4]
    np.testing.assert_array_equal(images.reshape(2, 3072), data)


def test_accepts_tarball_subdirectory(tmp_path):
    write_cifar10_batches(tmp_path / "cifar-10-batches-py", *_arrays())
    assert load_cifar10(tmp_path).num_train == 23


@pytest.mark.parametrize("missing", ["data_batch_1", "data_batch_5", "test_batch"])
def test_missing_file_message(tmp_path, missing):
    write_cifar10_batches(tmp_path, *_arrays())
    (tmp_path / missing).unlink()
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path)
    assert str(info.value) == (f"cifar10: {tmp_path / missing} not found (download the python version "
                               "from the official CIFAR-10 page and pass --data-dir)")


def test_missing_directory_and_registry_without_dir(tmp_path):
    with pytest.raises(DataError, match=r"data directory .* not found"):
        load_cifar10(tmp_path / "absent")
    with pytest.raises(DataError, match="cifar10: no data directory given"):
        load_dataset("cifar10")


def test_truncated_batch(tmp_path):
    write_cifar10_batches(tmp_path, *_arrays())
    blob = (tmp_path / "data_batch_3").read_bytes()
    (tmp_path / "data_batch_3").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="data_batch_3: corrupt or truncated pickle") as info:
        load_cifar10(tmp_path)
    assert "\n" not in str(info.value)


def test_label_count_mismatch(tmp_path):
    write_cifar10_batches(tmp_path, *_arrays())
    batch = {b"data": np.zeros((3, 3072), np.uint8), b"labels": [1, 2]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match="test_batch has 3 images but 2 labels"):
        load_cifar10(tmp_path)


def test_wrong_data_shape(tmp_path):
    write_cifar10_batches(tmp_path, *_arrays())
    batch = {b"data": np.zeros((2, 1024), np.uint8), b"labels": [1, 2]}
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=4))
    with pytest.raises(DataError, match=r"data_batch_2: b'data' must be a uint8 array of shape \(n, 3072\)"):
        load_cifar10(tmp_path)


class _Evil:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("protocol", [2, 5])
def test_rejects_malicious_pickle(tmp_path, protocol):
    write_cifar10_batches(tmp_path, *_arrays())
    marker = tmp_path / "pwned"
    payload = {b"data": _Evil(f"touch {marker}"), b"labels": [0]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(DataError, match=r"data_batch_1: refusing to unpickle global (posix|os|nt)\.system"):
        load_cifar10(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("target", [eval, getattr, np.load])
def test_rejects_other_globals(tmp_path, target):
    write_cifar10_batches(tmp_path, *_arrays())
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": target}, protocol=2))
    with pytest.raises(DataError, match="test_batch: refusing to unpickle global"):
        load_cifar10(tmp_path)
