"""The wire form of one layer's expert calls between a validator and a generation edge.

Owns the bodies of ``POST /compute``: a :mod:`bmoe.net.frames` frame whose header is ``{"layer": L}`` and whose one
object is a safetensors file of the layer's rows by expert id (``"2"``: the rows (n_2, d) routed to expert 2 in a
request, its outputs (n_2, d) in the answer). The rows travel as their raw little-endian bytes, checked against the
object's CID on arrival. :func:`decode_calls` refuses anything else with a :class:`WireError` (one line).

Must not know: HTTP, which edge answers, what the rows are.
"""

from __future__ import annotations

import torch

from bmoe.net.frames import FrameError, decode_frame, encode_frame
from bmoe.storage import StorageError, cid_of, deserialize_tensors, serialize_tensors

MAX_EXPERT_ID = 1 << 20


class WireError(ValueError):
    """A body that is not one layer's expert calls (one-line reason)."""


def encode_calls(layer: int, calls: dict[int, torch.Tensor]) -> bytes:
    """``calls`` (expert -> rows (n_e, d)) of ``layer`` as one frame."""
    data = serialize_tensors({str(expert): rows for expert, rows in sorted(calls.items())})
    return encode_frame({"layer": layer}, {cid_of(data): data})


def decode_calls(body: bytes) -> tuple[int, dict[int, torch.Tensor]]:
    """The layer and its calls (expert -> rows (n_e, d)) of a frame :func:`encode_calls` wrote."""
    try:
        header, objects = decode_frame(body)
    except FrameError as exc:
        raise WireError(str(exc)) from None
    layer = header.get("layer")
    if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
        raise WireError(f"the frame's header must name a layer (an integer >= 0), got {layer!r}")
    if len(objects) != 1:
        raise WireError(f"the frame must carry one object (the rows by expert), got {len(objects)}")
    try:
        tensors, _ = deserialize_tensors(next(iter(objects.values())))
    except StorageError as exc:
        raise WireError(f"the rows are not safetensors: {exc}") from None
    calls: dict[int, torch.Tensor] = {}
    for name, rows in tensors.items():
        if not name.isdigit() or int(name) > MAX_EXPERT_ID:
            raise WireError(f"rows named {name[:40]!r}: each tensor is named by its expert's id")
        if rows.dim() != 2:
            raise WireError(f"expert {name}: rows must be (n, d), got shape {tuple(rows.shape)}")
        calls[int(name)] = rows
    return layer, calls
