"""A decoder-only Mixture-of-Experts transformer in the style of Mixtral / OLMoE, to be read top to bottom.

    tokens (B, T)
      -> embed_tokens                                   (B, T, d)
      -> L x DecoderLayer:
           h = h + self_attn(input_layernorm(h))        causal, rotary positions, grouped-query heads as an option
           h = h + block_sparse_moe(post_attention_layernorm(h))
      -> norm -> lm_head                                (B, T, V)

The MoE feed-forward layer (:class:`SparseMoE`): a linear router computed in float32, softmax -> top-K ->
renormalised over the K (``moe.gate.route_top_k``: a softmax of the top-K logits; or, with the config's
``router_weighting`` "unit", the K chosen experts summed with weight 1, as a dense FFN split into neuron-slice
experts needs: ``lm/pretrained/``), N SwiGLU experts, and
**dropless** routing: no capacity factor, every token reaches its K experts, so a token's output never depends
on the other tokens of its batch (replicas on different batches agree, DESIGN.md "Large models"). Each expert
runs once on the tokens routed to it (``moe.dispatch``), as the B-MoE round runs it on an edge.

Parameter names are Hugging Face Mixtral's (``model.layers.{i}.block_sparse_moe.experts.{j}.w1.weight``,
``model.layers.{i}.self_attn.q_proj.weight``, ``lm_head.weight``...), so a state dict is a Mixtral checkpoint's
(``lm/checkpoint.py``). The layer-by-layer pieces (:meth:`DecoderLayer.attend`, :meth:`SparseMoE.route`,
:meth:`MoETransformer.embed`, :meth:`MoETransformer.head`) are what the B-MoE round calls between expert calls;
:meth:`MoETransformer.forward` composes them, the reference the distributed round must match.

Must not know: the ledger, edges, storage, or how the model is trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from bmoe.lm.config import LMConfig
from bmoe.lm.losses import load_balancing_loss, router_z_loss
from bmoe.moe.dispatch import combine, routed_samples
from bmoe.moe.gate import Routing, route_top_k


class RMSNorm(nn.Module):
    """x / rms(x) * weight, computed in float32 (Zhang & Sennrich, 2019)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def rotary_tables(head_dim: int, positions: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (positions, head_dim) of rotary position embeddings (Su et al., 2021), in the layout that
    rotates the two halves of a head against each other (as Hugging Face's Llama and Mixtral do)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))  # (hd/2,)
    angles = torch.outer(torch.arange(positions, dtype=torch.int64).float(), inv_freq)  # (P, hd/2)
    angles = torch.cat([angles, angles], dim=-1)  # (P, hd)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (B, H, T, hd) by the position tables ``cos``/``sin`` (T, hd)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class Attention(nn.Module):
    """Causal multi-head self-attention with rotary positions; ``num_key_value_heads`` < heads shares each
    key/value head among a group of query heads (grouped-query attention, Ainslie et al., 2023)."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        d, hd = config.hidden_size, config.head_dim
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = hd
        self.q_proj = nn.Linear(d, self.num_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, self.num_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, self.num_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(self.num_heads * hd, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(x).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)  # (B, Hkv, T, hd)
        v = self.v_proj(x).view(batch, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        group = self.num_heads // self.num_kv_heads
        if group > 1:  # each key/value head serves `group` query heads
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, H, T, hd)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hd)
        return self.o_proj(y.transpose(1, 2).reshape(batch, length, self.num_heads * self.head_dim))  # (B, T, d)


class SwiGLUExpert(nn.Module):
    """One expert: w2(silu(w1 x) * w3 x) (Shazeer, 2020), position-wise and stateless: (n, d) -> (n, d)."""

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(hidden_size, intermediate_size, bias=False)  # gate projection
        self.w2 = nn.Linear(intermediate_size, hidden_size, bias=False)  # down projection
        self.w3 = nn.Linear(hidden_size, intermediate_size, bias=False)  # up projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class SparseMoE(nn.Module):
    """N SwiGLU experts behind a linear router: each token goes to its top-K experts, dropless."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.renormalise = config.router_weighting == "softmax"  # else "unit": the chosen experts are summed
        self.gate = nn.Linear(config.hidden_size, config.num_local_experts, bias=False)  # the router
        self.experts = nn.ModuleList(SwiGLUExpert(config.hidden_size, config.intermediate_size)
                                     for _ in range(config.num_local_experts))

    def route(self, x: torch.Tensor) -> Routing:
        """The router on tokens ``x`` (n, d), in float32 whatever the model's dtype: top-K experts (n, K), their
        weights (n, K) (renormalised; all 1 when the router's weighting is "unit") and the router logits (n, N)."""
        logits = F.linear(x.float(), self.gate.weight.float())  # (n, N)
        routing = route_top_k(logits, self.top_k)
        if self.renormalise:
            return routing
        return Routing(routing.experts, torch.ones_like(routing.weights), logits)  # (n, K) of 1

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's output (B, T, d) and its router logits (B*T, N)."""
        batch, length, d = x.shape
        tokens = x.reshape(batch * length, d)  # (n, d)
        routing = self.route(tokens)
        groups = routed_samples(routing.experts, len(self.experts))
        outputs = {e: self.experts[e](tokens[rows]) for e, rows in groups.items()}  # (n_e, d) each
        y = combine(routing.experts, routing.weights.to(x.dtype), outputs, groups, d, self.renormalise)  # (n, d)
        return y.view(batch, length, d), routing.logits


class DecoderLayer(nn.Module):
    """Pre-norm attention, then the pre-norm MoE feed-forward layer, each added to the residual stream."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.block_sparse_moe = SparseMoE(config)

    def attend(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """The residual stream after attention: h + attn(norm(h)), (B, T, d)."""
        return h + self.self_attn(self.input_layernorm(h), cos, sin)

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.attend(h, cos, sin)
        y, router_logits = self.block_sparse_moe(self.post_attention_layernorm(h))
        return h + y, router_logits


class Decoder(nn.Module):
    """Mixtral's ``model``: the token embedding, the layers and the final norm."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


@dataclass
class LMOutput:
    logits: torch.Tensor  # (B, T, V)
    loss: torch.Tensor | None = None  # cross-entropy + the router losses, weighted (None without targets)
    cross_entropy: torch.Tensor | None = None  # nats per token
    balance_loss: torch.Tensor | None = None
    z_loss: torch.Tensor | None = None
    router_logits: list[torch.Tensor] = field(default_factory=list)  # per layer (B*T, N)


class MoETransformer(nn.Module):
    """Mixtral's ``MixtralForCausalLM``: ``model`` (:class:`Decoder`) and ``lm_head``."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.model = Decoder(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        cos, sin = rotary_tables(config.head_dim, config.max_position_embeddings, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)  # (P, hd)
        self.register_buffer("rope_sin", sin, persistent=False)

    @property
    def layers(self) -> nn.ModuleList:
        return self.model.layers

    def rotary(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The rotary tables of positions 0..length-1; a sequence longer than the context is refused."""
        if length > self.config.max_position_embeddings:
            raise ValueError(f"a sequence of {length} tokens is longer than the model's context "
                             f"({self.config.max_position_embeddings})")
        return self.rope_cos[:length], self.rope_sin[:length]

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> the residual stream (B, T, d)."""
        return self.model.embed_tokens(tokens)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """The residual stream (B, T, d) -> next-token logits (B, T, V)."""
        return self.lm_head(self.model.norm(h))

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor | None = None) -> LMOutput:
        cos, sin = self.rotary(tokens.shape[1])
        h = self.embed(tokens)
        router_logits = []
        for layer in self.model.layers:
            h, logits = layer(h, cos, sin)
            router_logits.append(logits)
        logits = self.head(h)  # (B, T, V)
        if targets is None:
            return LMOutput(logits, router_logits=router_logits)
        return lm_loss(self.config, logits, targets, router_logits)


def lm_loss(config: LMConfig, logits: torch.Tensor, targets: torch.Tensor,
            router_logits: list[torch.Tensor]) -> LMOutput:
    """Cross-entropy of ``logits`` (B, T, V) against ``targets`` (B, T), plus the router losses of every layer
    (logits (B*T, N) each) weighted by the config's coefficients."""
    cross_entropy = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
    k = config.num_experts_per_tok
    balance = torch.stack([load_balancing_loss(r, k) for r in router_logits]).mean()
    z = torch.stack([router_z_loss(r) for r in router_logits]).mean()
    loss = cross_entropy + config.router_aux_loss_coef * balance + config.router_z_loss_coef * z
    return LMOutput(logits, loss, cross_entropy, balance, z, router_logits)


def init_weights(model: MoETransformer, seed: int) -> MoETransformer:
    """GPT-2's initialisation from one seed (whatever torch's global generator holds): every weight matrix
    N(0, 0.02), the projections into the residual stream (o_proj, each expert's w2) scaled by 1/sqrt(2L), the
    norms 1. Parameters are visited in ``named_parameters`` order, so the seed fixes every value."""
    generator = torch.Generator().manual_seed(seed)
    residual_std = 0.02 / math.sqrt(2 * model.config.num_hidden_layers)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                parameter.fill_(1.0)
            else:
                std = residual_std if name.endswith(("o_proj.weight", "w2.weight")) else 0.02
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
    return model


def build_model(config: LMConfig, seed: int) -> MoETransformer:
    """A freshly initialised model of ``config`` (see :func:`init_weights`)."""
    return init_weights(MoETransformer(config), seed)
