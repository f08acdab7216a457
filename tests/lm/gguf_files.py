"""A tiny dense Llama written as llama.cpp writes one: a GGUF file (``gguf.GGUFWriter``) with random weights,
matrices quantised to Q4_1 and the embedding to Q8_0 by the ``gguf`` package, norms in F32, the rows of ``q_proj``
and ``k_proj`` permuted as llama.cpp's converter permutes them, and a byte-level BPE tokenizer (trained here with
``tokenizers``, digits split one by one like SmolLM2's) with ChatML special tokens and a chat template.

:class:`TinyGGUF` keeps what the file was made from: the dense weights the file holds after quantisation (Hugging
Face names and layout: the reference a reader must give back exactly) and the tokenizer the file's vocabulary
came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from bmoe.lm.pretrained.gguf_llama import LlamaShape, expected_shapes

SHAPE = LlamaShape(vocab_size=0, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=32, rope_theta=500.0, rms_norm_eps=1e-6,
                   tie_word_embeddings=True)  # vocab_size: the tokenizer's
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2 (SmolLM2's)
CHAT_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
                 "+ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                 "{% endif %}")
TEXT = ("The quick brown fox jumps over the lazy dog 12345 times. Über café naïve! 42 tokens, 7 experts; "
        "a model reads text, and text becomes tokens.\n") * 20
GGUF_NAMES = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
              "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
              "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


@dataclass(frozen=True)
class TinyGGUF:
    path: Path
    shape: LlamaShape
    dense: dict[str, torch.Tensor]  # Hugging Face names and layout, the values the file holds (after quantisation)
    tokenizer: Tokenizer  # the tokenizer whose vocabulary and merges the file holds


def llama_cpp_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's ``convert_hf_to_gguf.py`` ``LlamaModel.permute``: q_proj/k_proj rows from Hugging Face's
    rotate-half layout to llama.cpp's adjacent pairs."""
    return (weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def train_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                       pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=SPECIAL, show_progress=False)
    tokenizer.train_from_iterator([TEXT], trainer)
    return tokenizer


def random_dense(shape: LlamaShape, seed: int) -> dict[str, np.ndarray]:
    """Random dense weights (Hugging Face names), N(0, 0.2), norms 1 + N(0, 0.2): logits of order one."""
    generator = np.random.default_rng(seed)
    weights = {}
    for name, size in expected_shapes(shape).items():
        noise = generator.normal(0.0, 0.2, size).astype(np.float32)
        weights[name] = 1 + noise if "norm" in name else noise
    return weights


def gguf_name(hf_name: str) -> str:
    if hf_name.startswith("model.layers."):
        _, _, layer, rest = hf_name.split(".", 3)
        return f"blk.{layer}.{GGUF_NAMES[rest.removesuffix('.weight')]}.weight"
    return {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
            "lm_head.weight": "output.weight"}[hf_name]


def write_tiny_gguf(path: Path, seed: int = 0, pre: str = "smollm") -> TinyGGUF:
    """The tiny Llama as a GGUF file at ``path``."""
    import gguf

    tokenizer = train_tokenizer()
    shape = LlamaShape(**{**SHAPE.__dict__, "vocab_size": tokenizer.get_vocab_size()})
    tokens = [tokenizer.id_to_token(i) for i in range(shape.vocab_size)]
    merges = [" ".join(m) if isinstance(m, list) else m for m in json.loads(tokenizer.to_str())["model"]["merges"]]
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(shape.num_hidden_layers)
    writer.add_context_length(shape.max_position_embeddings)
    writer.add_embedding_length(shape.hidden_size)
    writer.add_feed_forward_length(shape.intermediate_size)
    writer.add_head_count(shape.num_attention_heads)
    writer.add_head_count_kv(shape.num_key_value_heads)
    writer.add_rope_freq_base(shape.rope_theta)
    writer.add_layer_norm_rms_eps(shape.rms_norm_eps)
    writer.add_rope_dimension_count(shape.head_dim)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in SPECIAL else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(CHAT_TEMPLATE)
    dense = {}
    for name, weight in random_dense(shape, seed).items():
        kind = gguf.GGMLQuantizationType.F32 if weight.ndim == 1 else (
            gguf.GGMLQuantizationType.Q8_0 if "embed" in name else gguf.GGMLQuantizationType.Q4_1)
        stored = weight if kind == gguf.GGMLQuantizationType.F32 else gguf.quants.quantize(weight, kind)
        # the row permutation moves whole rows, so it commutes with quantisation (blocks lie within a row)
        dense[name] = torch.from_numpy(gguf.quants.dequantize(stored, kind).reshape(weight.shape).copy())
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            heads = shape.num_attention_heads if "q_proj" in name else shape.num_key_value_heads
            stored = llama_cpp_permute(stored, heads)
        writer.add_tensor(gguf_name(name), stored, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return TinyGGUF(path, shape, dense, tokenizer)
