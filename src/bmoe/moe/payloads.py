"""The tensors that travel between layers, each encoded as canonical safetensors bytes.

task: the samples ``x`` (B, ...) and, for training, labels ``y`` (B,);
activation: the gate's top-K choice ``experts`` (B, K) and ``weights`` (B, K);
result: an expert's ``output`` (n_e, C) on its routed samples;
gradient: dL/d(output) (n_e, C) sent back to the edges in training.
"""

from __future__ import annotations

import torch

from bmoe.moe.dispatch import routed_samples
from bmoe.storage import deserialize_tensors, serialize_tensors


class PayloadError(ValueError):
    """Bytes that do not hold the expected tensors."""


def _load(data: bytes, names: tuple[str, ...], what: str) -> dict[str, torch.Tensor]:
    try:
        tensors, _ = deserialize_tensors(data)
    except Exception as err:  # corrupt bytes from an untrusted edge are data, not a crash
        raise PayloadError(f"{what}: not a safetensors object ({err})") from None
    if set(tensors) != set(names):
        raise PayloadError(f"{what}: expected tensors {sorted(names)}, got {sorted(tensors)}")
    return tensors


def encode_task(x: torch.Tensor, y: torch.Tensor | None) -> bytes:
    tensors = {"x": x.contiguous()}
    if y is not None:
        tensors["y"] = y.contiguous()
    return serialize_tensors(tensors)


def decode_task(data: bytes) -> tuple[torch.Tensor, torch.Tensor | None]:
    tensors, _ = deserialize_tensors(data)
    return tensors["x"], tensors.get("y")


def encode_activation(experts: torch.Tensor, weights: torch.Tensor) -> bytes:
    return serialize_tensors({"experts": experts.contiguous(), "weights": weights.detach().contiguous()})


def decode_activation(data: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = _load(data, ("experts", "weights"), "activation")
    return tensors["experts"], tensors["weights"]


def decode_task_for_edge(task: bytes, activation: bytes, num_experts: int) -> tuple[
        torch.Tensor, dict[int, torch.Tensor]]:
    """What an edge needs: the samples and each activated expert's rows."""
    x, _ = decode_task(task)
    experts, _ = decode_activation(activation)
    return x, routed_samples(experts, num_experts)


def encode_result(output: torch.Tensor) -> bytes:
    return serialize_tensors({"output": output.detach().contiguous()})


def decode_result(data: bytes, rows: int, classes: int) -> torch.Tensor:
    """An expert result, checked to be (rows, classes) finite float32, else PayloadError."""
    output = _load(data, ("output",), "result")["output"]
    if output.dtype != torch.float32 or tuple(output.shape) != (rows, classes):
        raise PayloadError(f"result: expected float32 ({rows}, {classes}), got {output.dtype} "
                           f"{tuple(output.shape)}")
    if not torch.isfinite(output).all():
        raise PayloadError("result: non-finite values")
    return output


def encode_gradient(grad: torch.Tensor) -> bytes:
    return serialize_tensors({"grad": grad.detach().contiguous()})


def decode_gradient(data: bytes) -> torch.Tensor:
    return _load(data, ("grad",), "gradient")["grad"]
