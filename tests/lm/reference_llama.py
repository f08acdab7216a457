"""The dense reference for a pretrained model read into bmoe: transformers' ``LlamaForCausalLM`` built in code from
a shape and dense weights (never from the hub, which is switched off while transformers is imported and used), and
a greedy loop that recomputes the whole sequence at each step (no KV cache: the two models are compared, not
timed), and llama.cpp's rotary embedding (adjacent pairs), to use a GGUF's own Q/K rows as llama.cpp does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

import pytest
import torch

from bmoe.lm.pretrained.gguf_llama import LlamaShape


@contextmanager
def offline_transformers() -> Iterator[ModuleType]:
    """transformers, imported (or skipped when it is not installed) with the Hugging Face hub switched off."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        module = pytest.importorskip("transformers")
        import huggingface_hub.constants  # read HF_HUB_OFFLINE when first imported: it may have been already

        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield module


def dense_llama(transformers: ModuleType, shape: LlamaShape, dense: dict[str, torch.Tensor]) -> torch.nn.Module:
    """transformers' dense Llama of ``shape`` holding ``dense`` (Hugging Face names), eager attention."""
    config = transformers.LlamaConfig(
        vocab_size=shape.vocab_size, hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers, num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads, max_position_embeddings=shape.max_position_embeddings,
        rope_theta=shape.rope_theta, rms_norm_eps=shape.rms_norm_eps, tie_word_embeddings=shape.tie_word_embeddings,
        attn_implementation="eager")
    with torch.random.fork_rng(devices=[]):  # its initial values are overwritten: leave the caller's RNG alone
        model = transformers.LlamaForCausalLM(config).eval()
    state = dict(dense)
    if shape.tie_word_embeddings:
        state["lm_head.weight"] = dense["model.embed_tokens.weight"]
    model.load_state_dict(state, strict=True)
    return model


def greedy(forward: Callable[[torch.Tensor], object], prompt: list[int], steps: int,
           stop: tuple[int, ...] = ()) -> list[int]:
    """Up to ``steps`` argmax tokens after ``prompt`` (ending at a ``stop`` token), the whole sequence recomputed
    each step."""
    tokens = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            tokens.append(int(forward(torch.tensor([tokens])).logits[0, -1].argmax()))  # type: ignore[attr-defined]
            if tokens[-1] in stop:
                break
    return tokens[len(prompt):]


def llama_cpp_rotary(x: torch.Tensor, theta: float) -> torch.Tensor:
    """llama.cpp's rotary embedding (``rope`` mode 0): adjacent pairs (2i, 2i + 1) of ``x`` (H, T, hd) rotated
    by position * theta^(-2i/hd)."""
    head_dim = x.shape[-1]
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (hd/2,)
    angles = torch.arange(x.shape[1], dtype=torch.float64)[:, None] * inv_freq  # (T, hd/2)
    even, odd = x[..., 0::2].double(), x[..., 1::2].double()
    cos, sin = angles.cos(), angles.sin()
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2).float()
