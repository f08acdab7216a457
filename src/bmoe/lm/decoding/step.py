"""One forward pass of the model over the uncached tokens of a batch of sequences: a prefill, a decode step,
or both mixed (continuous batching), returning each sequence's next-token logits.

Every sequence feeds a *segment*: its tokens not yet in its cache (a whole prompt, one token, or the tokens after
a rollback), at rotary positions ``start``.. where its cache ends. The segments' rows are concatenated (n rows)
for everything position-wise: the norms, the attention projections, the routers, the expert calls (one call per
layer for the whole batch) and the head; attention alone runs per sequence, against that sequence's cache.
Each layer is the model's own (``DecoderLayer.attend`` and ``SparseMoE.forward`` written out over the cache),
with every product on padded rows (``rows.py``), so a sequence's bits do not depend on the others in its batch.

Must not know: sampling, when sequences start or stop, where the experts run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bmoe.lm.decoding.expert_calls import CallLog, CallRows, ExpertCaller
from bmoe.lm.decoding.kv_cache import KVCache
from bmoe.lm.decoding.rows import stable_linear, stable_linears
from bmoe.lm.model import Attention, MoETransformer, SparseMoE, apply_rotary
from bmoe.moe.dispatch import combine, routed_samples
from bmoe.moe.gate import Routing, route_top_k


@dataclass(frozen=True)
class Segment:
    """The tokens one sequence feeds this step."""

    sequence: int  # the engine's id of the sequence
    tokens: torch.Tensor  # (t,) int64
    start: int  # the rotary position of the first token (its cache's length)
    first_position: int  # the first token's position in the sequence (``start`` unless a window slid)
    produced: int  # the position in the sequence of the token this step generates
    cache: KVCache


def _causal_mask(start: int, length: int, device: torch.device) -> torch.Tensor | None:
    """Which of positions 0..start+length-1 each of the ``length`` new queries sees (t, T), None when the plain
    causal flag or no mask says it."""
    if start == 0 or length == 1:
        return None
    keys = torch.arange(start + length, device=device)  # (T,)
    return keys[None, :] <= (start + torch.arange(length, device=device))[:, None]  # (t, T)


def _attention(attn: Attention, layer: int, x: torch.Tensor, segments: list[Segment], model: MoETransformer
               ) -> torch.Tensor:
    """Self-attention of rows ``x`` (n, d) (the segments' rows, in order), each sequence against its cache,
    the new keys and values written to it; (n, d)."""
    heads, kv_heads, head_dim = attn.num_heads, attn.num_kv_heads, attn.head_dim
    q, k, v = stable_linears(x, attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight)  # (n, H*hd), (n, Hkv*hd) x2
    outputs, offset = [], 0
    for segment in segments:
        length = int(segment.tokens.numel())
        rows = slice(offset, offset + length)
        offset += length
        cos = model.rope_cos[segment.start:segment.start + length]  # (t, hd)
        sin = model.rope_sin[segment.start:segment.start + length]
        qs = apply_rotary(q[rows].view(length, heads, head_dim).transpose(0, 1), cos, sin)  # (H, t, hd)
        ks = apply_rotary(k[rows].view(length, kv_heads, head_dim).transpose(0, 1), cos, sin)  # (Hkv, t, hd)
        vs = v[rows].view(length, kv_heads, head_dim).transpose(0, 1)
        keys, values = segment.cache.extend(layer, ks, vs)  # (Hkv, T, hd) each
        if heads > kv_heads:  # each key/value head serves a group of query heads
            keys = keys.repeat_interleave(heads // kv_heads, dim=0)  # (H, T, hd)
            values = values.repeat_interleave(heads // kv_heads, dim=0)
        mask = _causal_mask(segment.start, length, x.device)
        y = F.scaled_dot_product_attention(qs[None], keys[None], values[None], attn_mask=mask,
                                           is_causal=mask is None and length > 1)  # (1, H, t, hd)
        outputs.append(y[0].transpose(0, 1).reshape(length, heads * head_dim))  # (t, H*hd)
    return stable_linear(torch.cat(outputs), attn.o_proj.weight)  # (n, d)


@dataclass(frozen=True)
class RowOrigins:
    """Where each of a step's n rows comes from, for the call log."""

    sequences: torch.Tensor  # (n,) int64
    positions: torch.Tensor  # (n,)
    produced: torch.Tensor  # (n,)

    @classmethod
    def of(cls, segments: list[Segment]) -> RowOrigins:
        device = segments[0].tokens.device
        spans = [(s, int(s.tokens.numel())) for s in segments]
        return cls(torch.cat([torch.full((t,), s.sequence, device=device) for s, t in spans]),
                   torch.cat([torch.arange(s.first_position, s.first_position + t, device=device) for s, t in spans]),
                   torch.cat([torch.full((t,), s.produced, device=device) for s, t in spans]))


def _mixture(moe: SparseMoE, layer: int, x: torch.Tensor, caller: ExpertCaller,
             calls: list[tuple[int, int, CallRows]], origins: RowOrigins) -> torch.Tensor:
    """The MoE layer on rows ``x`` (n, d): the router in float32 (as ``SparseMoE.route``), one caller call for
    every expert chosen, the outputs combined by the routing weights; (n, d)."""
    routing = route_top_k(stable_linear(x.float(), moe.gate.weight.float()), moe.top_k)  # (n, K)
    if not moe.renormalise:  # a "unit" router (a MoEfied dense model): the chosen experts are summed
        routing = Routing(routing.experts, torch.ones_like(routing.weights), routing.logits)
    groups = routed_samples(routing.experts, len(moe.experts))
    routed = {expert: x[rows] for expert, rows in groups.items()}  # (n_e, d) each
    outputs = caller(layer, routed)
    for expert, out in outputs.items():
        if expert not in routed:
            raise ValueError(f"the expert caller answered expert {expert} of layer {layer}, which no row was sent to")
        if out.shape != routed[expert].shape:
            raise ValueError(f"the expert caller answered expert {expert} of layer {layer} with {tuple(out.shape)} "
                             f"rows for {tuple(routed[expert].shape)}")
        rows = groups[expert]
        calls.append((layer, expert, CallRows(origins.sequences[rows], origins.positions[rows],
                                              origins.produced[rows], routed[expert], out)))
    return combine(routing.experts, routing.weights.to(x.dtype), outputs, groups, x.shape[1], moe.renormalise)


def forward_step(model: MoETransformer, segments: list[Segment], caller: ExpertCaller,
                 log: CallLog | None = None) -> torch.Tensor:
    """Run ``segments`` through the model (without gradients; its train/eval mode is left alone, as it has no
    dropout), their keys and values appended to their caches and their expert calls to ``log``; the next-token
    logits after each segment's last token, (S, V). A step that fails (a caller raising) commits nothing, to the
    caches or the log: it can be run again."""
    ids = torch.cat([segment.tokens for segment in segments])  # (n,)
    origins = RowOrigins.of(segments)
    calls: list[tuple[int, int, CallRows]] = []  # logged once the step has gone through
    with torch.no_grad():
        h = model.model.embed_tokens(ids)  # (n, d)
        for index, layer in enumerate(model.layers):
            h = h + _attention(layer.self_attn, index, layer.input_layernorm(h), segments, model)
            h = h + _mixture(layer.block_sparse_moe, index, layer.post_attention_layernorm(h), caller, calls, origins)
        ends = torch.cumsum(torch.tensor([int(s.tokens.numel()) for s in segments], device=ids.device), 0) - 1  # (S,)
        logits = stable_linear(model.model.norm(h[ends]), model.lm_head.weight)  # (S, V)
    for segment in segments:
        segment.cache.advance(int(segment.tokens.numel()))
    if log is not None:
        for layer, expert, rows in calls:
            log.record(layer, expert, rows)
    return logits
