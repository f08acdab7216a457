"""The tensors a language-model round moves, each encoded as canonical safetensors bytes.

batch: the publisher's token sequences ``tokens`` (B, T) and, in training, the ``targets`` (B, T) int64;
layer activation: one layer's routing, as the classifier's activation is the gate's: ``experts`` (n, K) the
    ledger's expert indices (slots, ``layer * N + expert``), ``weights`` (n, K), and the experts' input ``inputs``
    (n, d): the normalised residual stream after the layer's attention, which only the validators can compute;
    a backward activation adds, per routed slot, ``grad.<slot>`` (n_e, d): dL/d(the expert's output), so an
    edge's result there is dL/d(the expert's input) for the tokens routed to it (a vector-Jacobian product).
Results and gradients are the classifier's (``moe/payloads.py``): (n_e, d) float32.

No non-finite number travels (``moe.payloads.require_finite``), and every reader checks shapes.

Must not know: the model, the ledger, how bytes travel.
"""

from __future__ import annotations

import math

import torch

from bmoe.moe.dispatch import routed_samples
from bmoe.moe.payloads import PayloadError, require_finite
from bmoe.storage import deserialize_tensors, serialize_tensors

GRAD = "grad."


def _tensors(data: bytes, what: str) -> dict[str, torch.Tensor]:
    try:
        return deserialize_tensors(data)[0]
    except Exception as err:  # bytes from an untrusted participant are data, not a crash
        raise PayloadError(f"{what}: not a safetensors object ({err})") from None


def check_batch(tokens: torch.Tensor, targets: torch.Tensor | None, vocab_size: int) -> None:
    """Token sequences (B, T) of ids in [0, vocab_size), and targets of the same shape; else PayloadError."""
    if tokens.dim() != 2 or tokens.shape[0] < 1 or tokens.shape[1] < 1 or tokens.dtype != torch.int64:
        raise PayloadError(f"batch: tokens must be int64 (B, T) with B, T >= 1, got {tokens.dtype} "
                           f"{tuple(tokens.shape)}")
    for name, ids in (("tokens", tokens), ("targets", targets)):
        if ids is None:
            continue
        if ids.dtype != torch.int64 or ids.shape != tokens.shape:
            raise PayloadError(f"batch: {name} must be int64 of shape {tuple(tokens.shape)}, got {ids.dtype} "
                               f"{tuple(ids.shape)}")
        if int(ids.min()) < 0 or int(ids.max()) >= vocab_size:
            raise PayloadError(f"batch: {name} must be ids in [0, {vocab_size}), got [{int(ids.min())}, "
                               f"{int(ids.max())}]")


def encode_batch(tokens: torch.Tensor, targets: torch.Tensor | None) -> bytes:
    tensors = {"tokens": tokens.contiguous()}
    if targets is not None:
        tensors["targets"] = targets.contiguous()
    return serialize_tensors(tensors)


def decode_batch(data: bytes, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    tensors = _tensors(data, "batch")
    if set(tensors) not in ({"tokens"}, {"tokens", "targets"}):
        raise PayloadError(f"batch: expected tensors ['tokens'] or ['targets', 'tokens'], got {sorted(tensors)}")
    tokens, targets = tensors["tokens"], tensors.get("targets")
    check_batch(tokens, targets, vocab_size)
    return tokens, targets


def encode_layer_activation(experts: torch.Tensor, weights: torch.Tensor, inputs: torch.Tensor,
                            grads: dict[int, torch.Tensor] | None = None) -> bytes:
    """One layer's routing: slots (n, K), weights (n, K), the experts' inputs (n, d), and in a backward
    activation each routed slot's output gradient (n_e, d)."""
    tensors = {"experts": experts.contiguous(), "weights": weights.detach().float().contiguous(),
               "inputs": inputs.detach().float().contiguous()}
    for slot, grad in sorted((grads or {}).items()):
        tensors[f"{GRAD}{slot}"] = grad.detach().float().contiguous()
    return serialize_tensors(tensors)


def decode_layer_activation(data: bytes, num_slots: int) -> tuple[
        torch.Tensor, dict[int, torch.Tensor], dict[int, torch.Tensor] | None]:
    """What an edge needs: the experts' inputs (n, d), each routed slot's token rows, and (a backward activation)
    each routed slot's output gradient; PayloadError for anything else."""
    tensors = _tensors(data, "layer activation")
    missing = {"experts", "weights", "inputs"} - set(tensors)
    if missing:
        raise PayloadError(f"layer activation: missing tensors {sorted(missing)}")
    experts, inputs = tensors["experts"], tensors["inputs"]
    if experts.dtype != torch.int64 or experts.dim() != 2 or inputs.dim() != 2 or inputs.shape[0] != experts.shape[0]:
        raise PayloadError(f"layer activation: experts (n, K) int64 and inputs (n, d) expected, got "
                           f"{experts.dtype} {tuple(experts.shape)} and {tuple(inputs.shape)}")
    if experts.numel() and (int(experts.min()) < 0 or int(experts.max()) >= num_slots):
        raise PayloadError(f"layer activation: expert indices must be in [0, {num_slots})")
    require_finite("layer activation inputs", inputs)
    groups = routed_samples(experts, num_slots)
    grad_names = sorted(name for name in tensors if name.startswith(GRAD))
    if not grad_names:
        return inputs, groups, None
    grads = {}
    for name in grad_names:
        slot_text = name[len(GRAD):]
        slot = int(slot_text) if slot_text.isdigit() else -1
        if slot not in groups:
            raise PayloadError(f"layer activation: {name} names no routed expert")
        grad = tensors[name]
        if grad.dtype != torch.float32 or tuple(grad.shape) != (int(groups[slot].numel()), inputs.shape[1]):
            raise PayloadError(f"layer activation: {name} must be float32 ({int(groups[slot].numel())}, "
                               f"{inputs.shape[1]}), got {grad.dtype} {tuple(grad.shape)}")
        require_finite(name, grad)
        grads[slot] = grad
    if set(grads) != set(groups):
        raise PayloadError(f"layer activation: output gradients for slots {sorted(grads)}, routed {sorted(groups)}")
    return inputs, groups, grads


def gradient_scale(tokens: int) -> float:
    """The power of two (>= ``tokens``) the output gradients a backward task sends are multiplied by: the loss is
    a mean over the batch's tokens, so each token's gradient is ~1/tokens and the edges' dL/d(input) rows would be
    tiny, below any tolerance's floor (a comparison must see an honest drift and a lie at the same scale in every
    layer and direction). A power of two scales every product exactly, so the unscaled gradient is recovered bit
    for bit (``descaled``)."""
    return float(2 ** max(0, math.ceil(math.log2(max(1, tokens)))))


def scaled(grads: dict[int, torch.Tensor], scale: float) -> dict[int, torch.Tensor]:
    return {slot: grad * scale for slot, grad in grads.items()}


def descaled(grads: dict[int, torch.Tensor], scale: float) -> dict[int, torch.Tensor]:
    return {slot: grad / scale for slot, grad in grads.items()}
