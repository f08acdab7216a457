"""The validators' side of one layer of a language model, forward and backward, around the edges' expert calls.

Forward, layer l (:func:`enter_layer`, then :func:`leave_layer` once the layer's expert calls are decided):
attention and the router run here on the residual stream; the experts' input (the normalised stream) and the
routing go to the edges; the accepted outputs come back and are mixed into the stream (renormalised over the
accepted experts, ``moe.dispatch.combine``, or summed when the model's ``router_weighting`` is "unit"; the mix
the validators record, :func:`recorded_mix`, is the stream's when the model computes in float32, made once).
Each layer's graph is kept, cut at its input, for its backward.

Backward, layer l, from the top (:func:`output_gradients`, then :func:`backpropagate`): dL/d(each expert's
output) is taken from the layer's graph and sent to the edges; the edges' accepted dL/d(input) rows come back,
summed per token, and join the gradient of the stream through attention, norms and router, which accumulates
the trusted part's gradients and dL/d(the layer's input), the gradient of the layer below.

Must not know: the ledger, storage, edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bmoe.lm.losses import load_balancing_loss, router_z_loss
from bmoe.lm.model import MoETransformer
from bmoe.moe.dispatch import combine, routed_samples
from bmoe.moe.gate import Routing


@dataclass
class LayerPass:
    """One layer's forward on the validators, kept for its backward."""

    layer: int
    h_in: torch.Tensor  # (B, T, d) the layer's input, a leaf (requires grad when training)
    h_mid: torch.Tensor  # (B, T, d) after attention
    x: torch.Tensor  # (n, d) the experts' input, n = B*T
    routing: Routing  # experts as the ledger's slots (n, K), weights (n, K), router logits (n, N)
    groups: dict[int, torch.Tensor]  # slot -> ascending token rows
    aux: torch.Tensor | None  # the layer's router losses, weighted (training)
    leaves: dict[int, torch.Tensor] = field(default_factory=dict)  # slot -> accepted output (n_e, d)
    mixed: torch.Tensor | None = None  # (n, d) the accepted experts' mix, of ``mixed_of``
    mixed_of: tuple[bool, dict[int, torch.Tensor]] | None = None  # (train, the accepted outputs) it was made of
    h_out: torch.Tensor | None = None  # (B, T, d)
    renormalise: bool = True  # the mix renormalises over the accepted experts (router_weighting "softmax"), else sums


def enter_layer(model: MoETransformer, layer: int, h: torch.Tensor, train: bool) -> LayerPass:
    """Attention and the router of layer ``layer`` on the stream ``h`` (B, T, d)."""
    config = model.config
    block = model.model.layers[layer]
    h_in = h.detach().requires_grad_(train)
    cos, sin = model.rotary(h.shape[1])
    with torch.set_grad_enabled(train):
        h_mid = block.attend(h_in, cos, sin)
        x = block.post_attention_layernorm(h_mid).reshape(-1, config.hidden_size)  # (n, d)
        local = block.block_sparse_moe.route(x)
        slots = local.experts + layer * config.num_local_experts  # (n, K)
        routing = Routing(slots, local.weights, local.logits)
        aux = None
        if train:
            k = config.num_experts_per_tok
            layers = config.num_hidden_layers  # each term as lm_loss weighs it: coefficient x (term / L)
            aux = (config.router_aux_loss_coef * (load_balancing_loss(local.logits, k) / layers)
                   + config.router_z_loss_coef * (router_z_loss(local.logits) / layers))
    return LayerPass(layer, h_in, h_mid, x, routing, routed_samples(slots, config.num_slots), aux,
                     renormalise=block.block_sparse_moe.renormalise)


def mix(layer: LayerPass, outputs: dict[int, torch.Tensor], train: bool) -> torch.Tensor:
    """The accepted experts' mix (n, d) in the model's precision (renormalised over the accepted experts,
    ``moe.dispatch.combine``), with its graph when training; kept for :func:`leave_layer`."""
    layer.leaves = {slot: out.detach().requires_grad_(train) for slot, out in outputs.items()}
    with torch.set_grad_enabled(train):
        layer.mixed = combine(layer.routing.experts, layer.routing.weights.to(layer.x.dtype), layer.leaves,
                              layer.groups, layer.x.shape[1], layer.renormalise)  # (n, d)
    layer.mixed_of = (train, dict(outputs))
    return layer.mixed


def recorded_mix(layer: LayerPass, outputs: dict[int, torch.Tensor], train: bool) -> torch.Tensor:
    """What the validators record as a forward task's aggregate: the accepted experts' mix (n, d) in the router's
    precision (float32), detached. A model that computes in float32 mixes the stream with the same bits: the mix is
    made once, for both (:func:`mix`)."""
    if layer.routing.weights.dtype == layer.x.dtype:
        return mix(layer, outputs, train).detach()
    return combine(layer.routing.experts, layer.routing.weights.detach(), outputs, layer.groups, layer.x.shape[1],
                   layer.renormalise)


def leave_layer(layer: LayerPass, outputs: dict[int, torch.Tensor], train: bool) -> torch.Tensor:
    """The stream after the layer: attention's output + the accepted experts' mix (B, T, d) (the one :func:`mix`
    made of these outputs, else made now)."""
    made = layer.mixed_of
    if (layer.mixed is None or made is None or made[0] != train or made[1].keys() != outputs.keys()
            or any(made[1][slot] is not out for slot, out in outputs.items())):
        mix(layer, outputs, train)
    assert layer.mixed is not None
    with torch.set_grad_enabled(train):
        layer.h_out = layer.h_mid + layer.mixed.view_as(layer.h_mid)
    return layer.h_out


def output_gradients(layer: LayerPass, g_out: torch.Tensor) -> dict[int, torch.Tensor]:
    """dL/d(output) (n_e, d) of every routed slot, given dL/d(the layer's output) ``g_out`` (B, T, d). A slot whose
    result was not accepted took no part in the mix: its gradient is zero."""
    assert layer.h_out is not None
    accepted = sorted(layer.leaves)
    found = torch.autograd.grad(layer.h_out, [layer.leaves[s] for s in accepted], g_out, retain_graph=True,
                                allow_unused=True) if accepted else ()
    grads = {slot: (g if g is not None else torch.zeros_like(layer.leaves[slot]))
             for slot, g in zip(accepted, found, strict=True)}
    for slot, rows in layer.groups.items():
        if slot not in grads:
            grads[slot] = layer.x.new_zeros(int(rows.numel()), layer.x.shape[1])
    return dict(sorted(grads.items()))


def summed_rows(groups: dict[int, torch.Tensor], rows: dict[int, torch.Tensor], tokens: int,
                width: int) -> torch.Tensor:
    """Each slot's rows (n_e, d) added into its tokens' rows of a (tokens, width) zero tensor: a backward task's
    aggregate, what the validators record and what the replay recomputes."""
    total = torch.zeros(tokens, width)
    for slot, slot_rows in rows.items():
        total = total.index_add(0, groups[slot], slot_rows)
    return total


def input_gradient(layer: LayerPass, accepted: dict[int, torch.Tensor]) -> torch.Tensor:
    """dL/d(the experts' input) (n, d): the accepted dL/d(input) rows of every slot, summed per token (each already
    carries its routing weight, through dL/d(output))."""
    return summed_rows(layer.groups, accepted, *layer.x.shape)


def backpropagate(layer: LayerPass, g_out: torch.Tensor, g_x: torch.Tensor) -> torch.Tensor:
    """Backpropagate the layer: dL/d(output) ``g_out`` (B, T, d) through the stream and the routing weights,
    ``g_x`` (n, d) from the edges through the norm and attention, and the layer's router losses. The trusted
    part's gradients accumulate; returns dL/d(the layer's input) (B, T, d)."""
    assert layer.h_out is not None
    tensors, grads = [layer.h_out, layer.x], [g_out, g_x]
    if layer.aux is not None:
        tensors.append(layer.aux)
        grads.append(torch.ones_like(layer.aux))
    torch.autograd.backward(tensors, grads)
    assert layer.h_in.grad is not None
    return layer.h_in.grad
