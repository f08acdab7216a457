"""Canonical safetensors serialisation of named tensors, and the digest of serialised bytes.

Owns the one byte layout that turns a ``{name: tensor}`` dict (plus optional string metadata)
into bytes, such that bitwise-equal tensors always give identical bytes, hence identical CIDs,
whatever the dict's insertion order, the tensors' device, strides or autograd state, and the
installed safetensors version. ``safetensors.torch.save`` is not canonical: it writes
``__metadata__`` in hash-map order, which changes from run to run.

Layout (a valid safetensors file):

* 8-byte little-endian header length, then the header: compact JSON
  (``separators=(",", ":")``, keys sorted, ASCII only), padded with spaces to a multiple of 8;
  ``__metadata__`` is present only when metadata is non-empty;
* then the raw little-endian tensor bytes, ordered by descending element size and then by
  name, with no gaps, so every tensor starts aligned to its element size.

Reading uses the ``safetensors`` library's validation; anything it rejects raises
:class:`~bmoe.storage.errors.CorruptObject`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

import numpy as np
import torch
from safetensors import deserialize

from bmoe.storage.errors import CorruptObject

_METADATA_KEY = "__metadata__"
_HEADER_LEN_BYTES = 8
_ALIGN = 8

_DTYPE_TO_NAME: dict[torch.dtype, str] = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.complex64: "C64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint64: "U64",
    torch.uint32: "U32",
    torch.uint16: "U16",
    torch.uint8: "U8",
    torch.bool: "BOOL",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
}
_NAME_TO_DTYPE: dict[str, torch.dtype] = {name: dtype for dtype, name in _DTYPE_TO_NAME.items()}

SUPPORTED_DTYPES: frozenset[torch.dtype] = frozenset(_DTYPE_TO_NAME)
"""Tensor dtypes :func:`serialize_tensors` accepts."""


def _require_little_endian() -> None:
    if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
        raise NotImplementedError("canonical tensor serialisation requires a little-endian host")


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping of str to str, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise TypeError(f"metadata keys must be str, got {type(key).__name__} key {key!r}")
        if not isinstance(value, str):
            raise TypeError(
                f"metadata values must be str, got {type(value).__name__} for key {key!r}; "
                "convert it explicitly (e.g. str() or json.dumps())"
            )
    return {key: metadata[key] for key in sorted(metadata)}


def _tensor_bytes(name: str, tensor: object) -> tuple[str, list[int], int, np.ndarray]:
    """Return (dtype name, shape, element size, raw little-endian bytes) of one tensor; the bytes are a flat uint8
    view of the dense tensor (not copied: ``serialize_tensors`` copies them once, into the object)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"tensor {name!r} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.layout != torch.strided:
        raise TypeError(
            f"tensor {name!r} has layout {tensor.layout}; only dense (strided) tensors are supported"
        )
    dtype_name = _DTYPE_TO_NAME.get(tensor.dtype)
    if dtype_name is None:
        raise TypeError(f"tensor {name!r} has unsupported dtype {tensor.dtype}")
    dense = tensor.detach().to("cpu").resolve_conj().resolve_neg().contiguous()
    raw = dense.reshape(-1).view(torch.uint8).numpy()
    return dtype_name, list(dense.shape), dense.element_size(), raw


def serialize_tensors(
    tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> bytes:
    """Serialise ``tensors`` (and optional string ``metadata``) to canonical safetensors bytes.

    Tensors are detached, moved to CPU and made contiguous first. Raises ``TypeError`` for
    non-str names or metadata entries, non-tensors, sparse tensors or unsupported dtypes, and
    ``ValueError`` for an empty name or the reserved name ``__metadata__``.
    """
    _require_little_endian()
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must be a mapping of str to torch.Tensor, got {type(tensors).__name__}")
    meta = _check_metadata(metadata)
    entries: list[tuple[str, str, list[int], int, np.ndarray]] = []
    for name, tensor in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {type(name).__name__} {name!r}")
        if not name:
            raise ValueError("tensor names must be non-empty")
        if name == _METADATA_KEY:
            raise ValueError(f"{_METADATA_KEY!r} is reserved and cannot name a tensor")
        entries.append((name, *_tensor_bytes(name, tensor)))
    entries.sort(key=lambda entry: (-entry[3], entry[0]))

    header: dict[str, object] = {}
    if meta:
        header[_METADATA_KEY] = meta
    offset = 0
    for name, dtype_name, shape, _, raw in entries:
        header[name] = {"dtype": dtype_name, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    header_text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    header_bytes = header_text.encode("ascii")
    header_bytes += b" " * (-len(header_bytes) % _ALIGN)
    parts = [len(header_bytes).to_bytes(_HEADER_LEN_BYTES, "little"), header_bytes]
    parts.extend(entry[4] for entry in entries)
    return b"".join(parts)


def _read_header(data: bytes) -> dict[str, object]:
    if len(data) < _HEADER_LEN_BYTES:
        raise CorruptObject(f"not safetensors: {len(data)} bytes is shorter than the 8-byte header length")
    size = int.from_bytes(data[:_HEADER_LEN_BYTES], "little")
    if size > len(data) - _HEADER_LEN_BYTES:
        available = len(data) - _HEADER_LEN_BYTES
        raise CorruptObject(
            f"not safetensors: header length {size} exceeds the {available} bytes that follow"
        )
    try:
        header = json.loads(bytes(data[_HEADER_LEN_BYTES : _HEADER_LEN_BYTES + size]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptObject(f"not safetensors: header is not UTF-8 JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise CorruptObject(f"not safetensors: header is a JSON {type(header).__name__}, not an object")
    return header


def _read_metadata(header: Mapping[str, object]) -> dict[str, str]:
    meta = header.get(_METADATA_KEY, {})
    if meta is None:
        return {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CorruptObject("not safetensors: __metadata__ must map strings to strings")
    return {key: meta[key] for key in sorted(meta)}


def deserialize_tensors(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Parse safetensors bytes into ``(tensors by name, metadata)``; both dicts are sorted by key.

    The returned tensors are CPU tensors that own their memory. Raises
    :class:`~bmoe.storage.errors.CorruptObject` if ``data`` is not a valid safetensors file.
    """
    _require_little_endian()
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    blob = bytes(data)
    metadata = _read_metadata(_read_header(blob))
    try:
        flat = deserialize(blob)
    except Exception as exc:  # safetensors raises its own SafetensorError (an Exception)
        raise CorruptObject(f"not safetensors: {exc}") from exc
    tensors: dict[str, torch.Tensor] = {}
    for name, view in sorted(flat, key=lambda item: item[0]):
        dtype = _NAME_TO_DTYPE.get(view["dtype"])
        if dtype is None:
            raise CorruptObject(f"tensor {name!r} has unsupported safetensors dtype {view['dtype']!r}")
        shape = list(view["shape"])
        buffer = view["data"]
        if len(buffer) == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            owned = buffer if isinstance(buffer, bytearray) else bytearray(buffer)  # writable, ours
            tensors[name] = torch.frombuffer(owned, dtype=dtype).reshape(shape)
    return tensors, metadata
