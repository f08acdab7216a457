"""Owns writing CIFAR-10 batch files in the official "python version" format (for tests).

``protocol=2`` reproduces the official files byte-for-byte in structure: a Python-2
cPickle protocol-2 stream where every string (keys, filenames, array payload) is a
Python-2 ``str`` opcode (read back as ``bytes`` with ``encoding="bytes"``) and numpy is
referenced as ``numpy.core.multiarray._reconstruct``. ``protocol>=3`` writes the same
dict with the standard Python 3 pickler (as a modern re-pickle would).
This relies on the pure-Python ``pickle._Pickler``; it is a test helper, not a loader.
"""

from __future__ import annotations

import io
import pickle
import struct
import types
from pathlib import Path
from typing import Any

import numpy as np

from .cifar10 import TEST_FILE, TRAIN_FILES

LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class _Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler emitting Python-2 ``str`` opcodes and numpy 1.x global names."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes | str) -> None:
        raw = obj.encode("ascii") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str
    dispatch[types.FunctionType] = save_global


def _dump(obj: dict[bytes, Any], path: Path, protocol: int) -> None:
    if protocol == 2:
        buf = io.BytesIO()
        _Py2Pickler(buf, protocol=2).dump(obj)
        path.write_bytes(buf.getvalue())
    else:
        path.write_bytes(pickle.dumps(obj, protocol=protocol))


def _batch(x: np.ndarray, y: np.ndarray, label: str, start: int) -> dict[bytes, Any]:
    data = np.ascontiguousarray(np.asarray(x, dtype=np.uint8).reshape(len(x), 3072))
    return {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in y],
        b"data": data,
        b"filenames": [f"image_{start + i:05d}.png".encode() for i in range(len(x))],
    }


def write_cifar10_batches(directory: Path, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                          y_test: np.ndarray, protocol: int = 2) -> Path:
    """Write ``data_batch_1..5``, ``test_batch`` and ``batches.meta`` into ``directory``.

    ``x_*`` are uint8 ``(n, 3, 32, 32)`` or ``(n, 3072)``; the training set is split
    into 5 near-equal batches. Returns ``directory``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    starts = np.linspace(0, len(x_train), len(TRAIN_FILES) + 1).astype(int)
    for i, name in enumerate(TRAIN_FILES):
        lo, hi = starts[i], starts[i + 1]
        batch = _batch(x_train[lo:hi], y_train[lo:hi], f"training batch {i + 1} of 5", lo)
        _dump(batch, directory / name, protocol)
    _dump(_batch(x_test, y_test, "testing batch 1 of 1", 0), directory / TEST_FILE, protocol)
    names = [n.encode() for n in LABEL_NAMES]
    meta = {b"num_cases_per_batch": 10000, b"label_names": names, b"num_vis": 3072}
    _dump(meta, directory / "batches.meta", protocol)
    return directory
