"""Owns loading CIFAR-10 from the official "python version" pickle batches (never downloads).

Expected files in ``data_dir`` (or in ``data_dir/cifar-10-batches-py``, the folder the
official tarball extracts to): ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``,
each a pickled dict with ``b"data"`` (uint8 array ``(n, 3072)``: R, G, B planes of a
32x32 image, row-major) and ``b"labels"`` (list of ints in 0..9).

Security: pickle can run arbitrary code, so batches are read with
:class:`RestrictedUnpickler`, which resolves only the globals needed to rebuild numpy
arrays and refuses everything else with :class:`DataError`.
Images become float32 ``(n, 3, 32, 32)``: ``(pixel / 255 - MEAN[c]) / STD[c]``.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..fileio import open_regular_file
from .dataset import Dataset, labels_tensor, normalise
from .errors import DataError

NAME = "cifar10"
NUM_CLASSES = 10
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
#: Widely published per-channel mean / population std of the 50000 training images in [0, 1].
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
_HINT = "download the python version from the official CIFAR-10 page and pass --data-dir"
_SUBDIR = "cifar-10-batches-py"

#: (module, name) allowed in a batch pickle -> candidate modules to resolve it from (first importable wins).
_ALLOWED: dict[tuple[str, str], tuple[str, ...]] = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "numpy.core.multiarray"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "numpy.core.numeric"),
    ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "numpy.core.numeric"),
    ("numpy", "ndarray"): ("numpy",),
    ("numpy", "dtype"): ("numpy",),
    ("_codecs", "encode"): ("_codecs",),
}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only rebuild numpy arrays (plus ``_codecs.encode`` for protocol 2)."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        candidates = _ALLOWED.get((module, name))
        if candidates is None:
            raise DataError(f"{NAME}: {self._path}: refusing to unpickle global {module}.{name} "
                            "(only numpy arrays are allowed)")
        for candidate in candidates:
            try:
                return getattr(importlib.import_module(candidate), name)
            except (ImportError, AttributeError):
                continue
        raise DataError(f"{NAME}: {self._path}: cannot resolve {module}.{name} in this numpy version")


def load_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch file safely; return ``(images uint8 (n, 3, 32, 32), labels int64 (n,))``."""
    try:
        with open_regular_file(path) as f:  # a FIFO or a device is refused before it is opened
            obj = RestrictedUnpickler(f, path).load()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{NAME}: {path} not found ({_HINT})") from None
    except Exception as exc:  # pickle raises many types on corrupt input
        raise DataError(f"{NAME}: {path}: corrupt or truncated pickle ({type(exc).__name__}: "
                        f"{_one_line(exc)})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{NAME}: {path}: expected a pickled dict, got {type(obj).__name__}")
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{NAME}: {path}: b'data' must be a uint8 array of shape (n, 3072), got {got}")
    label_arr = np.asarray(labels if labels is not None else [])
    if label_arr.ndim != 1 or (label_arr.size and not np.issubdtype(label_arr.dtype, np.integer)):
        raise DataError(f"{NAME}: {path}: b'labels' must be a list of ints")
    if label_arr.shape[0] != data.shape[0]:
        raise DataError(f"{NAME}: {path} has {data.shape[0]} images but {label_arr.shape[0]} labels")
    if label_arr.size and (label_arr.min() < 0 or label_arr.max() >= NUM_CLASSES):
        raise DataError(f"{NAME}: {path}: labels outside [0, {NUM_CLASSES})")
    return data.reshape(-1, 3, 32, 32), label_arr.astype(np.int64)


def _resolve_dir(data_dir: Path) -> Path:
    if not data_dir.is_dir():
        raise DataError(f"{NAME}: data directory {data_dir} not found ({_HINT})")
    if not (data_dir / TRAIN_FILES[0]).exists() and (data_dir / _SUBDIR / TRAIN_FILES[0]).exists():
        return data_dir / _SUBDIR
    return data_dir


def load_cifar10(data_dir: Path) -> Dataset:
    """Load CIFAR-10 (normally 50000 train / 10000 test, 10 classes) from ``data_dir``.

    Batch sizes are not required to be 10000. Raises :class:`DataError` on a missing
    directory/file, corrupt pickle, disallowed pickle global or inconsistent content.
    """
    data_dir = _resolve_dir(Path(data_dir))
    for name in (*TRAIN_FILES, TEST_FILE):
        if not (data_dir / name).is_file():
            raise DataError(f"{NAME}: {data_dir / name} not found ({_HINT})")
    train = [load_batch(data_dir / name) for name in TRAIN_FILES]
    x_test, y_test = load_batch(data_dir / TEST_FILE)
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return Dataset(
        name=NAME,
        x_train=normalise(x_train, 255.0, MEAN, STD),
        y_train=labels_tensor(y_train),
        x_test=normalise(x_test, 255.0, MEAN, STD),
        y_test=labels_tensor(y_test),
        num_classes=NUM_CLASSES,
    )
