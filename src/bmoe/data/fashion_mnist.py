"""Owns loading Fashion-MNIST from local IDX files (never downloads).

Default location is where Debian's ``dataset-fashion-mnist`` package installs the
files: ``/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``.
Each file may be plain or ``.gz``; the plain file wins if both exist.
Images become float32 ``(n, 1, 28, 28)``: ``(pixel / 255 - MEAN) / STD``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import Dataset, labels_tensor, normalise
from .errors import DataError
from .idx import read_idx

NAME = "fashion-mnist"
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
NUM_CLASSES = 10
#: Mean / population std of all 60000x28x28 training pixels scaled to [0, 1].
MEAN = 0.2860406
STD = 0.3530242
_HINT = "install Debian package dataset-fashion-mnist or pass --data-dir"
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _locate(data_dir: Path, stem: str) -> Path:
    for candidate in (data_dir / stem, data_dir / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{NAME}: {data_dir / stem}(.gz) not found ({_HINT})")


def _read(path: Path) -> np.ndarray:
    try:
        return read_idx(path)
    except DataError as exc:
        raise DataError(f"{NAME}: {exc}") from None


def _load_split(data_dir: Path, images_stem: str, labels_stem: str) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = _locate(data_dir, images_stem), _locate(data_dir, labels_stem)
    images, labels = _read(images_path), _read(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{NAME}: {images_path}: expected uint8 images of shape (n, 28, 28), "
                        f"got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{NAME}: {labels_path}: expected 1-D uint8 labels, "
                        f"got {labels.dtype} {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{NAME}: {images_path} has {images.shape[0]} images but "
                        f"{labels_path} has {labels.shape[0]} labels")
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise DataError(f"{NAME}: {labels_path}: label {int(labels.max())} outside [0, {NUM_CLASSES})")
    return images, labels


def load_fashion_mnist(data_dir: Path | None = None) -> Dataset:
    """Load Fashion-MNIST (60000 train / 10000 test, 10 classes) from ``data_dir``.

    ``data_dir`` defaults to :data:`DEFAULT_DIR`. Raises :class:`DataError` on any
    missing, corrupt or inconsistent file.
    """
    data_dir = DEFAULT_DIR if data_dir is None else Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{NAME}: data directory {data_dir} not found ({_HINT})")
    x_train, y_train = _load_split(data_dir, *_FILES["train"])
    x_test, y_test = _load_split(data_dir, *_FILES["test"])
    return Dataset(
        name=NAME,
        x_train=normalise(x_train[:, None], 255.0, [MEAN], [STD]),
        y_train=labels_tensor(y_train),
        x_test=normalise(x_test[:, None], 255.0, [MEAN], [STD]),
        y_test=labels_tensor(y_test),
        num_classes=NUM_CLASSES,
    )
