"""The tensors that travel between layers, each encoded as canonical safetensors bytes.

task: the samples ``x`` (B, ...) and, for training, labels ``y`` (B,);
activation: the gate's top-K choice ``experts`` (B, K) and ``weights`` (B, K);
result: an expert's ``output`` (n_e, C) on its routed samples;
gradient: dL/d(output) (n_e, C) sent back to the edges in training.

No non-finite number travels: every floating-point tensor is checked when it is encoded by its
author (the publisher's task) and when it is decoded by its reader, and one NaN or inf raises
:class:`NonFiniteValue` naming the tensor and the first bad position. A task with such data is
refused before anything about it is recorded, so no edge ever computes on it.
"""

from __future__ import annotations

import torch

from bmoe.moe.dispatch import routed_samples
from bmoe.storage import CorruptObject, deserialize_tensors, serialize_tensors


class PayloadError(ValueError):
    """Bytes that do not hold the expected tensors."""


class NonFiniteValue(PayloadError):
    """A tensor that must be finite holds NaN or inf; the message names it and where."""


def require_finite(what: str, tensor: torch.Tensor) -> None:
    """Raise :class:`NonFiniteValue` unless every value of ``tensor`` is finite (integers always are)."""
    if not (tensor.is_floating_point() or tensor.is_complex()):
        return
    if bool(torch.isfinite(tensor.detach().sum())):  # one pass: a NaN or inf anywhere makes the sum non-finite
        return
    bad = ~torch.isfinite(tensor.detach())  # (or finite values overflowed the sum: look at each)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0].tolist())
        raise NonFiniteValue(f"{what}: {int(bad.sum())} non-finite value(s) (NaN or inf), the first at index "
                             f"{first}")


def _load(data: bytes, names: tuple[str, ...], what: str) -> dict[str, torch.Tensor]:
    try:
        tensors, _ = deserialize_tensors(data)
    except Exception as err:  # corrupt bytes from an untrusted edge are data, not a crash
        raise PayloadError(f"{what}: not a safetensors object ({err})") from None
    if set(tensors) != set(names):
        raise PayloadError(f"{what}: expected tensors {sorted(names)}, got {sorted(tensors)}")
    return tensors


def check_task(x: torch.Tensor, y: torch.Tensor | None) -> None:
    """A task's samples ``x`` (B, ...) and labels ``y`` (B,): at least one sample, finite values,
    integer labels, one per sample; else :class:`PayloadError` (NonFiniteValue for NaN or inf)."""
    if x.dim() < 1 or x.shape[0] < 1:
        raise PayloadError(f"task: x must hold at least one sample, got shape {tuple(x.shape)}")
    require_finite("task data x", x)
    if y is None:
        return
    if y.is_floating_point() or y.is_complex() or tuple(y.shape) != (x.shape[0],):
        raise PayloadError(f"task: y must be one integer label per sample ({x.shape[0]},), got {y.dtype} "
                           f"{tuple(y.shape)}")


def check_task_fits(x: torch.Tensor, y: torch.Tensor | None, input_shape: tuple[int, ...], num_classes: int) -> None:
    """:func:`check_task`, and the task fits the run's model: float32 samples of ``input_shape``, labels in
    [0, ``num_classes``). Else :class:`PayloadError`, before anything about the task is recorded."""
    check_task(x, y)
    if x.dtype != torch.float32 or tuple(x.shape[1:]) != tuple(input_shape):
        raise PayloadError(f"task: x must be float32 samples of shape {tuple(input_shape)}, got {x.dtype} "
                           f"{tuple(x.shape[1:])}")
    if y is not None and y.numel() and not (int(y.min()) >= 0 and int(y.max()) < num_classes):
        raise PayloadError(f"task: labels must be in [0, {num_classes}), got [{int(y.min())}, {int(y.max())}]")


def encode_task(x: torch.Tensor, y: torch.Tensor | None) -> bytes:
    check_task(x, y)
    tensors = {"x": x.contiguous()}
    if y is not None:
        tensors["y"] = y.contiguous()
    return serialize_tensors(tensors)


def decode_task(data: bytes) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The task's ``x`` and ``y`` (None for inference), checked by :func:`check_task`."""
    try:
        tensors, _ = deserialize_tensors(data)
    except Exception as err:  # the publisher's bytes are untrusted too
        raise PayloadError(f"task: not a safetensors object ({err})") from None
    if set(tensors) not in ({"x"}, {"x", "y"}):
        raise PayloadError(f"task: expected tensors ['x'] or ['x', 'y'], got {sorted(tensors)}")
    x, y = tensors["x"], tensors.get("y")
    check_task(x, y)
    return x, y


def encode_activation(experts: torch.Tensor, weights: torch.Tensor) -> bytes:
    return serialize_tensors({"experts": experts.contiguous(), "weights": weights.detach().contiguous()})


def decode_activation(data: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = _load(data, ("experts", "weights"), "activation")
    require_finite("activation weights", tensors["weights"])
    return tensors["experts"], tensors["weights"]


def decode_task_for_edge(task: bytes, activation: bytes, num_experts: int) -> tuple[
        torch.Tensor, dict[int, torch.Tensor]]:
    """What an edge needs: the samples and each activated expert's rows."""
    x, _ = decode_task(task)
    experts, _ = decode_activation(activation)
    return x, routed_samples(experts, num_experts)


def encode_routed_rows(x: torch.Tensor, groups: dict[int, torch.Tensor], experts: list[int]) -> bytes:
    """The rows of ``x`` (B, ...) routed to any of ``experts`` (``groups``: expert -> sample indices), each once, and
    each expert's positions among them: what one edge computes on, instead of the whole task. A sample routed to
    two of the edge's experts travels once (an edge's K-of-N experts share many samples)."""
    union = torch.unique(torch.cat([groups[expert] for expert in experts]))  # (U,) ascending sample indices
    tensors: dict[str, torch.Tensor] = {"x": x[union].contiguous(), "i": union.contiguous()}  # (U, ...), (U,)
    for expert in experts:
        tensors[f"p.{expert}"] = torch.searchsorted(union, groups[expert]).contiguous()  # (n_e,) positions in x
    return serialize_tensors(tensors)


def decode_routed_rows(data: bytes) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """:func:`encode_routed_rows`'s rows (U, ...) and each expert's positions among them, so that ``x[groups[e]]``
    is the rows of expert ``e``, bit for bit as indexing the whole task gives them."""
    try:
        tensors, _ = deserialize_tensors(data)
        experts = sorted(int(name.split(".", 1)[1]) for name in tensors if name.startswith("p."))
        if set(tensors) != {"x", "i", *(f"p.{e}" for e in experts)} or not experts:
            raise ValueError(f"expected x, i and p.E for each expert, got {sorted(tensors)}")
        x, rows = tensors["x"], tensors["i"]
        if x.ndim < 1 or rows.shape != (x.shape[0],):
            raise ValueError(f"x {tuple(x.shape)} and its sample indices i {tuple(rows.shape)} differ in length")
        groups = {e: tensors[f"p.{e}"] for e in experts}
        for expert, positions in groups.items():
            if positions.dtype != torch.int64 or positions.ndim != 1 or (
                    positions.numel() and not 0 <= int(positions.min()) <= int(positions.max()) < x.shape[0]):
                raise ValueError(f"p.{expert} must be int64 positions in [0, {x.shape[0]})")
    except (ValueError, RuntimeError, CorruptObject) as err:
        raise PayloadError(f"routed rows: {err}") from None
    require_finite("routed rows", x)
    return x, groups


def encode_result(output: torch.Tensor) -> bytes:
    return serialize_tensors({"output": output.detach().contiguous()})


def decode_result(data: bytes, rows: int, classes: int) -> torch.Tensor:
    """An expert result, checked to be (rows, classes) finite float32, else PayloadError."""
    output = _load(data, ("output",), "result")["output"]
    if output.dtype != torch.float32 or tuple(output.shape) != (rows, classes):
        raise PayloadError(f"result: expected float32 ({rows}, {classes}), got {output.dtype} "
                           f"{tuple(output.shape)}")
    require_finite("result", output)
    return output


def encode_gradient(grad: torch.Tensor) -> bytes:
    return serialize_tensors({"grad": grad.detach().contiguous()})


def decode_gradient(data: bytes) -> torch.Tensor:
    grad = _load(data, ("grad",), "gradient")["grad"]
    require_finite("gradient", grad)
    return grad
