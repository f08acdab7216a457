"""Owns reading and writing the IDX file format (MNIST / Fashion-MNIST).

Layout: two zero bytes, one dtype code, one byte ``ndim``, then ``ndim`` big-endian
uint32 dimensions, then the payload in C order, big-endian. Files may be gzipped
(detected from the gzip magic ``1f 8b``, whatever the file name) or plain. The
payload length must match the header exactly; anything else is a :class:`DataError`.
"""

from __future__ import annotations

import gzip as _gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ..fileio import read_regular_file
from .errors import DataError

#: IDX dtype code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES: dict[str, int] = {dt.str[1:]: code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


MAX_IDX_BYTES = 1 << 30  # Fashion-MNIST's largest file is 47 MB; a FIFO or /dev/zero is refused, not read


def _read_bytes(path: Path) -> bytes:
    try:
        raw = read_regular_file(path, MAX_IDX_BYTES)
        return _gzip.decompress(raw) if raw[:2] == _GZIP_MAGIC else raw
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        detail = " ".join(str(exc).split())
        raise DataError(f"{path}: corrupt or truncated file ({type(exc).__name__}: {detail})") from None


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file (plain or gzipped) into a native-endian numpy array.

    Raises :class:`DataError` naming ``path`` on a missing file, bad gzip stream,
    wrong magic, unknown dtype code, or a payload whose size differs from the header.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: wrong IDX magic number 0x{data[:4].hex()} (must start with two zero bytes)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX dtype code 0x{code:02x}")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, need {header_len})")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    actual = len(data) - header_len
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(f"{path}: IDX payload {what}: {actual} bytes for dims {dims} (expected {expected})")
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: Path | str, array: np.ndarray, gzip: bool = False) -> Path:
    """Write ``array`` as an IDX file at exactly ``path``; gzip-compress it if ``gzip``.

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (any byte order).
    Gzip output uses mtime 0 so identical arrays give identical files.
    """
    path = Path(path)
    arr = np.asarray(array)
    key = arr.dtype.str[1:]
    if key not in _CODES:
        raise ValueError(f"write_idx: unsupported dtype {arr.dtype}")
    if arr.ndim == 0 or arr.ndim > 255 or any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"write_idx: unsupported shape {arr.shape}")
    header = bytes([0, 0, _CODES[key], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(_gzip.compress(payload, mtime=0) if gzip else payload)
    return path
