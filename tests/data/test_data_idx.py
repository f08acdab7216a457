"""IDX reader/writer: round trips (plain and gzip, all dtypes) and one-line DataErrors."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from bmoe.data import DataError, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / "a.idx", arr, gzip=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") is compress
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # result is writable and native-endian
    assert out.dtype.isnative


def test_header_layout_is_standard(tmp_path):
    path = write_idx(tmp_path / "l", np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert path.read_bytes() == b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + bytes(range(6))
    path = write_idx(tmp_path / "i", np.array([1, -2], dtype=np.int16))
    assert path.read_bytes() == b"\x00\x00\x0b\x01" + struct.pack(">I", 2) + struct.pack(">hh", 1, -2)


def _assert_one_line_error(path, match):
    with pytest.raises(DataError, match=match) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_missing_file(tmp_path):
    _assert_one_line_error(tmp_path / "nope", "not found")


def test_wrong_magic(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00")
    _assert_one_line_error(path, "magic")


def test_unknown_dtype_code(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")
    _assert_one_line_error(path, "dtype code 0x07")


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_payload(tmp_path, compress):
    good = write_idx(tmp_path / "good", np.zeros((4, 5), np.int32)).read_bytes()
    data = good[:-3]
    path = tmp_path / "bad"
    path.write_bytes(gzip.compress(data) if compress else data)
    _assert_one_line_error(path, "truncated")


def test_trailing_bytes(tmp_path):
    good = write_idx(tmp_path / "good", np.zeros((4,), np.uint8)).read_bytes()
    path = tmp_path / "bad"
    path.write_bytes(good + b"\x00")
    _assert_one_line_error(path, "trailing")


def test_truncated_header(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">I", 5))
    _assert_one_line_error(path, "truncated IDX header")
    path.write_bytes(b"\x00\x00")
    _assert_one_line_error(path, "truncated IDX header")


def test_truncated_gzip_stream(tmp_path):
    blob = write_idx(tmp_path / "good.gz", np.arange(1000, dtype=np.int32), gzip=True).read_bytes()
    path = tmp_path / "bad.gz"
    path.write_bytes(blob[: len(blob) // 2])
    _assert_one_line_error(path, "corrupt or truncated")


def test_corrupt_gzip_stream(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    _assert_one_line_error(path, "corrupt or truncated")


def test_writer_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="unsupported dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
