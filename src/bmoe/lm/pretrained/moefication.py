"""Owns "MoEfication" (Zhang et al., 2022): a dense Llama made into bmoe's :class:`MoETransformer` by splitting each
SwiGLU feed-forward layer into E neuron-slice experts.

``down(silu(gate x) * up x)`` is a sum over the intermediate dimension, so with the I rows of ``gate_proj`` and
``up_proj`` and the I columns of ``down_proj`` cut into E consecutive slices of I/E, expert e's
``w2(silu(w1 x) * w3 x)`` is slice e's share and the dense FFN is the sum of the E experts' outputs. The model is
built with every expert active (K = E) and the config's ``router_weighting`` "unit" (the chosen experts summed with
weight 1, not mixed by a softmax), so it is the dense model up to summation order. Its routers are zero: with
K = E they choose every expert whatever their weights; choosing fewer (K < E) needs routers trained to pick the
slices that matter, which this module does not do.

Attention, norms, embeddings and the head are the dense model's, under Mixtral's names (``lm/model.py``).

Must not know: GGUF files, tokenizers, where the weights came from.
"""

from __future__ import annotations

import torch

from bmoe.data.errors import DataError
from bmoe.lm.checkpoint import model_from_tensors
from bmoe.lm.config import LMConfig
from bmoe.lm.hf_layout import expert_name
from bmoe.lm.model import MoETransformer

from .gguf_llama import LlamaShape

DEFAULT_EXPERTS = 8  # 1536 / 8 = 192 neurons an expert for SmolLM2-135M: the 8 experts of a Mixtral layer
DENSE_NAMES = ("input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight",
               "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight")


def moefied_config(shape: LlamaShape, experts: int = DEFAULT_EXPERTS) -> LMConfig:
    """The MoE config of the dense Llama ``shape`` split into ``experts`` slices a layer, all active, summed."""
    if isinstance(experts, bool) or not isinstance(experts, int) or experts < 1 \
            or shape.intermediate_size % experts:
        raise DataError(f"experts must be a positive divisor of the FFN width {shape.intermediate_size}, "
                        f"got {experts!r}")
    return LMConfig(vocab_size=shape.vocab_size, hidden_size=shape.hidden_size,
                    intermediate_size=shape.intermediate_size // experts, num_hidden_layers=shape.num_hidden_layers,
                    num_attention_heads=shape.num_attention_heads, num_key_value_heads=shape.num_key_value_heads,
                    num_local_experts=experts, num_experts_per_tok=experts,
                    max_position_embeddings=shape.max_position_embeddings, rope_theta=shape.rope_theta,
                    rms_norm_eps=shape.rms_norm_eps, tie_word_embeddings=shape.tie_word_embeddings,
                    router_weighting="unit")


def moefied_tensors(config: LMConfig, dense: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The MoE's tensors by Mixtral name from the dense Llama's (Hugging Face names): each FFN's slices as
    experts, a zero router per layer, everything else as it is."""
    width = config.intermediate_size  # I / E
    tensors = {name: dense[name] for name in ("model.embed_tokens.weight", "model.norm.weight")}
    if not config.tie_word_embeddings:
        tensors["lm_head.weight"] = dense["lm_head.weight"]
    for layer in range(config.num_hidden_layers):
        prefix = f"model.layers.{layer}"
        tensors.update({f"{prefix}.{name}": dense[f"{prefix}.{name}"] for name in DENSE_NAMES})
        gate, up = dense[f"{prefix}.mlp.gate_proj.weight"], dense[f"{prefix}.mlp.up_proj.weight"]  # (I, d) each
        down = dense[f"{prefix}.mlp.down_proj.weight"]  # (d, I)
        for expert in range(config.num_local_experts):
            rows = slice(expert * width, (expert + 1) * width)
            tensors[expert_name(layer, expert, "w1")] = gate[rows].clone()  # (I/E, d)
            tensors[expert_name(layer, expert, "w3")] = up[rows].clone()  # (I/E, d)
            tensors[expert_name(layer, expert, "w2")] = down[:, rows].clone()  # (d, I/E)
        tensors[f"{prefix}.block_sparse_moe.gate.weight"] = torch.zeros(config.num_local_experts, config.hidden_size)
    return tensors


def moefy(shape: LlamaShape, dense: dict[str, torch.Tensor], experts: int = DEFAULT_EXPERTS) -> MoETransformer:
    """The dense Llama (``shape``, tensors by Hugging Face name) as an MoE of ``experts`` slices a layer."""
    config = moefied_config(shape, experts)
    return model_from_tensors(config, moefied_tensors(config, dense)).eval()
