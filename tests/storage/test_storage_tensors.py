"""Canonical tensor serialisation: determinism, sensitivity, round trips, corrupt input."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from bmoe.storage import (
    SUPPORTED_DTYPES,
    CorruptObject,
    cid_of,
    deserialize_tensors,
    serialize_tensors,
    sha256_hex,
)

SRC = Path(__file__).resolve().parents[2] / "src"


def sample() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "w1": torch.randn(4, 3, generator=gen),
        "b1": torch.randn(4, generator=gen).to(torch.float16),
        "idx": torch.arange(5, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
    }


def header_of(data: bytes) -> dict[str, object]:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size])


def as_bits(tensor: torch.Tensor) -> torch.Tensor:
    """A view comparable with torch.equal for every dtype (float8 has no equality kernel)."""
    return tensor.contiguous().view(torch.uint8) if tensor.element_size() == 1 else tensor


def test_insertion_order_does_not_matter() -> None:
    tensors = sample()
    reordered = {name: tensors[name] for name in reversed(list(tensors))}
    meta = {f"k{i}": str(i) for i in range(10)}
    meta_reordered = {key: meta[key] for key in reversed(list(meta))}
    a = serialize_tensors(tensors, meta)
    b = serialize_tensors(reordered, meta_reordered)
    assert a == b
    assert cid_of(a) == cid_of(b)
    assert sha256_hex(a) == sha256_hex(b)


@pytest.mark.slow  # starts Python processes (tests/tiers.py: a process start costs seconds)
def test_bytes_are_identical_across_processes() -> None:
    # safetensors.torch.save writes __metadata__ in a per-process random order; ours must not.
    script = (
        "import hashlib, torch\n"
        "from bmoe.storage import serialize_tensors\n"
        "t = {'b': torch.arange(6.).reshape(2, 3), 'a': torch.ones(3, dtype=torch.int32)}\n"
        "m = {f'key{i}': f'value{i}' for i in range(16)}\n"
        "print(hashlib.sha256(serialize_tensors(t, m)).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env={**env, "PYTHONHASHSEED": str(seed)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2, 3)
    ]
    outputs = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0]
    digests = set(outputs)
    assert len(digests) == 1
    t = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(3, dtype=torch.int32)}
    m = {f"key{i}": f"value{i}" for i in range(16)}
    assert digests == {hashlib.sha256(serialize_tensors(t, m)).hexdigest()}


def test_layout_is_independent_of_strides_and_autograd() -> None:
    base = torch.arange(12.0).reshape(3, 4)
    transposed = base.t()  # non-contiguous view
    grad = base.t().contiguous().clone().requires_grad_(True)
    sliced = torch.cat([torch.full((5,), -1.0), base.t().reshape(-1)])[5:].reshape(4, 3)  # storage offset
    expected = serialize_tensors({"x": base.t().contiguous()})
    assert not transposed.is_contiguous()
    assert serialize_tensors({"x": transposed}) == expected
    assert serialize_tensors({"x": grad}) == expected
    assert serialize_tensors({"x": sliced}) == expected


@pytest.mark.parametrize(
    "change",
    ["dtype", "value", "shape", "name", "metadata", "extra tensor"],
)
def test_any_difference_changes_bytes(change: str) -> None:
    tensors, meta = sample(), {"kind": "expert"}
    other, other_meta = dict(tensors), dict(meta)
    if change == "dtype":
        other["w1"] = tensors["w1"].to(torch.float64)
    elif change == "value":
        other["w1"] = tensors["w1"].clone()
        other["w1"][0, 0] += 1e-6
    elif change == "shape":
        other["w1"] = tensors["w1"].reshape(3, 4)
    elif change == "name":
        other["w2"] = other.pop("w1")
    elif change == "metadata":
        other_meta["kind"] = "gate"
    else:
        other["zero"] = torch.zeros(1)
    a, b = serialize_tensors(tensors, meta), serialize_tensors(other, other_meta)
    assert a != b
    assert cid_of(a) != cid_of(b)


def test_round_trip_every_supported_dtype() -> None:
    tensors = {str(dtype): torch.arange(6).reshape(2, 3).to(dtype) for dtype in SUPPORTED_DTYPES}
    tensors["scalar"] = torch.tensor(2.5)
    tensors["empty"] = torch.empty(0, 7)
    meta = {"z": "last", "a": "first", "unicode": "ünï"}
    data = serialize_tensors(tensors, meta)
    out, out_meta = deserialize_tensors(data)
    assert list(out) == sorted(tensors)
    assert out_meta == meta and list(out_meta) == sorted(meta)
    for name, tensor in tensors.items():
        assert out[name].dtype == tensor.dtype, name
        assert out[name].shape == tensor.shape, name
        assert torch.equal(as_bits(out[name]), as_bits(tensor)), name
    out[str(torch.float32)].add_(1)  # returned tensors own writable memory
    assert serialize_tensors(tensors, meta) == data  # and re-serialise to the same bytes


def test_layout_is_valid_aligned_safetensors() -> None:
    data = serialize_tensors(sample(), {"m": "1"})
    header_len = int.from_bytes(data[:8], "little")
    assert header_len % 8 == 0
    header = header_of(data)
    assert header["__metadata__"] == {"m": "1"}
    offsets = []
    for name, tensor in sample().items():
        entry = header[name]
        assert isinstance(entry, dict)
        begin, end = entry["data_offsets"]
        assert begin % tensor.element_size() == 0
        offsets.append((begin, end))
    offsets.sort()
    assert offsets[0][0] == 0 and offsets[-1][1] == len(data) - 8 - header_len
    assert all(a[1] == b[0] for a, b in itertools.pairwise(offsets))
    loaded = st_load(data)  # the reference library reads our bytes
    for name, tensor in sample().items():
        assert torch.equal(loaded[name], tensor)


def test_no_metadata_header_entry_when_empty() -> None:
    assert "__metadata__" not in header_of(serialize_tensors(sample()))
    assert serialize_tensors(sample(), {}) == serialize_tensors(sample(), None)
    assert deserialize_tensors(serialize_tensors(sample()))[1] == {}


def test_reads_files_written_by_safetensors() -> None:
    tensors = sample()
    out, meta = deserialize_tensors(st_save(tensors, metadata={"b": "2", "a": "1"}))
    assert meta == {"a": "1", "b": "2"}
    for name, tensor in tensors.items():
        assert torch.equal(out[name], tensor)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"epoch": 3}, "metadata values must be str, got int for key 'epoch'"),
        ({"ok": "yes", "lr": 0.1}, "metadata values must be str, got float for key 'lr'"),
        ({1: "x"}, "metadata keys must be str"),
        (["not", "a", "mapping"], "metadata must be a mapping"),
    ],
)
def test_rejects_bad_metadata(metadata: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        serialize_tensors(sample(), metadata)  # type: ignore[arg-type]


def test_rejects_bad_tensors() -> None:
    with pytest.raises(TypeError, match=r"must be a torch\.Tensor"):
        serialize_tensors({"x": [1, 2, 3]})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="tensor names must be str"):
        serialize_tensors({1: torch.ones(1)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="reserved"):
        serialize_tensors({"__metadata__": torch.ones(1)})
    with pytest.raises(ValueError, match="non-empty"):
        serialize_tensors({"": torch.ones(1)})
    with pytest.raises(TypeError, match="layout"):
        serialize_tensors({"s": torch.eye(3).to_sparse()})
    with pytest.raises(TypeError, match="unsupported dtype"):
        serialize_tensors({"c": torch.ones(2, dtype=torch.complex128)})


def _valid() -> bytes:
    return serialize_tensors(sample(), {"m": "1"})


def _with_header(header: bytes, body: bytes = b"") -> bytes:
    return len(header).to_bytes(8, "little") + header + body


CORRUPT = {
    "empty": b"",
    "short": b"\x01\x02\x03",
    "header too long": (10**6).to_bytes(8, "little") + b"{}",
    "not json": _with_header(b"{not json}"),
    "json array": _with_header(b"[1, 2]"),
    "bad metadata": _with_header(b'{"__metadata__": {"a": 1}}'),
    "truncated data": _valid()[:-3],
    "extra data": _valid() + b"\x00" * 8,
    "offsets out of range": _with_header(b'{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', bytes(4)),
    "unknown dtype": _with_header(b'{"x":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}', b"\x00"),
    "random bytes": hashlib.sha256(b"noise").digest() * 4,
}


@pytest.mark.parametrize("case", CORRUPT, ids=list(CORRUPT))
def test_corrupt_bytes_raise_corrupt_object(case: str) -> None:
    with pytest.raises(CorruptObject, match="safetensors"):
        deserialize_tensors(CORRUPT[case])


def test_digest_of_is_hex_sha256() -> None:
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    data = _valid()
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert sha256_hex(data) != sha256_hex(data[:-1])
