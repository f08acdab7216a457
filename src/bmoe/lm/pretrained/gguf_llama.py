"""Owns reading a dense Llama from a GGUF file (llama.cpp's format) with the ``gguf`` package: its shape from the
``llama.*`` metadata, and its weights dequantised to float32 under Hugging Face Llama's names, in Hugging Face's
rotary layout.

- **Dequantisation** is ``gguf.quants.dequantize``, the package's own, for whatever type a tensor has (Q4_1 and
  Q8_0 in SmolLM2's file, F32 norms). GGUF lists a matrix's dimensions innermost first; the array it gives is
  (rows, columns) = (out, in), PyTorch's ``nn.Linear`` layout.
- **Rotary layout.** llama.cpp rotates adjacent pairs of a head's query/key dimensions, (0, 1), (2, 3), ...;
  Hugging Face's Llama (and bmoe, ``lm/model.py``) rotates the two halves against each other, (i, i + hd/2). So
  llama.cpp's converter (``convert_hf_to_gguf.py``, ``LlamaModel.permute``) reorders the rows of ``q_proj`` and
  ``k_proj`` within each head: the file's row 2i + j is Hugging Face's row j * hd/2 + i.
  :func:`undo_rotary_permutation` puts them back, so both layouts give the same attention scores.
- Tied embeddings: a file without ``output.weight`` reads its head from the token embedding.

Refused with one :class:`DataError` line: a file that is not GGUF, an architecture other than ``llama``, an MoE
GGUF, scaled rotary embeddings, partial rotary dimensions, missing or mis-shaped tensors.

Must not know: the tokenizer (``gguf_tokenizer.py``), experts (``moefication.py``), where the file came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bmoe.data.errors import DataError

ARCHITECTURE = "llama"
# GGUF tensor name -> Hugging Face Llama's, per layer ("{i}") or for the whole model
LAYER_TENSORS = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
MODEL_TENSORS = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


@dataclass(frozen=True)
class LlamaShape:
    """A dense Llama's hyperparameters, in Hugging Face ``LlamaConfig``'s names."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int
    rope_theta: float
    rms_norm_eps: float
    tie_word_embeddings: bool

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


def open_gguf(path: Path) -> Any:
    """A ``gguf.GGUFReader`` of ``path`` (memory-mapped); one DataError line if it is not a GGUF file."""
    import gguf

    try:
        return gguf.GGUFReader(path, "r")
    except (OSError, ValueError, IndexError, KeyError) as err:  # the reader's refusals of a truncated/foreign file
        raise DataError(f"{path}: not a readable GGUF file ({str(err).splitlines()[0] if str(err) else err!r})") \
            from None


def metadata(reader: Any, key: str, default: Any = None) -> Any:
    """The value of metadata ``key`` (a number, a string, a list); ``default``, or a DataError line when absent
    and no default is given."""
    field = reader.fields.get(key)
    if field is None:
        if default is None:
            raise DataError(f"{reader.data.filename}: the GGUF's metadata has no {key}")
        return default
    return field.contents()


def float32_value(value: float) -> float:
    """A float32 metadata value as the decimal it was written from: the shortest that rounds to the same float32
    (GGUF keeps an epsilon of 1e-5 as 9.99999974e-06; the model was trained with 1e-5)."""
    return float(str(np.float32(value)))


def llama_shape(reader: Any) -> LlamaShape:
    """The Llama's shape from the file's ``llama.*`` metadata (its vocabulary from the token embedding's rows)."""
    where = reader.data.filename
    architecture = metadata(reader, "general.architecture")
    if architecture != ARCHITECTURE:
        raise DataError(f"{where}: architecture {architecture!r}; only a dense {ARCHITECTURE} GGUF is read")
    if metadata(reader, "llama.expert_count", 0):
        raise DataError(f"{where}: an MoE GGUF (llama.expert_count); only a dense Llama is read")
    if metadata(reader, "llama.rope.scaling.type", "none") not in ("none", "linear") or \
            metadata(reader, "llama.rope.scaling.factor", 1.0) != 1.0:
        raise DataError(f"{where}: scaled rotary embeddings (llama.rope.scaling.*) are not implemented")
    heads = int(metadata(reader, "llama.attention.head_count"))
    hidden = int(metadata(reader, "llama.embedding_length"))
    embedding = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if embedding is None:
        raise DataError(f"{where}: no token_embd.weight tensor")
    shape = LlamaShape(
        vocab_size=int(embedding.shape[1]), hidden_size=hidden,
        intermediate_size=int(metadata(reader, "llama.feed_forward_length")),
        num_hidden_layers=int(metadata(reader, "llama.block_count")), num_attention_heads=heads,
        num_key_value_heads=int(metadata(reader, "llama.attention.head_count_kv", heads)),
        max_position_embeddings=int(metadata(reader, "llama.context_length")),
        rope_theta=float32_value(metadata(reader, "llama.rope.freq_base", 10000.0)),
        rms_norm_eps=float32_value(metadata(reader, "llama.attention.layer_norm_rms_epsilon")),
        tie_word_embeddings=not any(t.name == "output.weight" for t in reader.tensors))
    rotary = int(metadata(reader, "llama.rope.dimension_count", shape.head_dim))
    if rotary != shape.head_dim:
        raise DataError(f"{where}: rotary embeddings over {rotary} of a head's {shape.head_dim} dimensions are "
                        "not implemented")
    return shape


def undo_rotary_permutation(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """``q_proj`` or ``k_proj`` (heads * hd, d) from llama.cpp's row order back to Hugging Face's: within each head,
    the file's row 2i + j is row j * hd/2 + i (the inverse of ``convert_hf_to_gguf.py``'s ``permute``)."""
    rows = weight.shape[0]
    per_head = weight.reshape(heads, rows // heads // 2, 2, *weight.shape[1:])  # (H, hd/2, 2, d)
    return per_head.transpose(1, 2).reshape(weight.shape).contiguous()  # (H*hd, d): (H, 2, hd/2, d) flattened


def dequantized(tensor: Any) -> torch.Tensor:
    """One GGUF tensor as float32 (rows, columns), dequantised by the ``gguf`` package."""
    from gguf.quants import dequantize

    try:
        values = dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError as err:
        raise DataError(f"{tensor.name}: {err}") from None
    shape = tuple(int(n) for n in reversed(tensor.shape))  # GGUF lists the innermost dimension first
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32).reshape(shape).copy())


def hf_name(gguf_name: str) -> str | None:
    """Hugging Face Llama's name of a GGUF tensor (None for one a Llama does not use, e.g. ``rope_freqs``)."""
    stem, _, suffix = gguf_name.rpartition(".")
    if stem in MODEL_TENSORS:
        return f"{MODEL_TENSORS[stem]}.{suffix}"
    parts = stem.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in LAYER_TENSORS:
        return f"model.layers.{parts[1]}.{LAYER_TENSORS[parts[2]]}.{suffix}"
    return None


def expected_shapes(shape: LlamaShape) -> dict[str, tuple[int, ...]]:
    """Every tensor of the dense Llama of ``shape`` by Hugging Face name (no ``lm_head`` when tied)."""
    d, hd, ffn = shape.hidden_size, shape.head_dim, shape.intermediate_size
    q, kv = shape.num_attention_heads * hd, shape.num_key_value_heads * hd
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (shape.vocab_size, d), "model.norm.weight": (d,)}
    if not shape.tie_word_embeddings:
        shapes["lm_head.weight"] = (shape.vocab_size, d)
    per_layer = {"input_layernorm.weight": (d,), "post_attention_layernorm.weight": (d,),
                 "self_attn.q_proj.weight": (q, d), "self_attn.k_proj.weight": (kv, d),
                 "self_attn.v_proj.weight": (kv, d), "self_attn.o_proj.weight": (d, q),
                 "mlp.gate_proj.weight": (ffn, d), "mlp.up_proj.weight": (ffn, d), "mlp.down_proj.weight": (d, ffn)}
    for layer in range(shape.num_hidden_layers):
        shapes.update({f"model.layers.{layer}.{name}": size for name, size in per_layer.items()})
    return shapes


def llama_tensors(reader: Any, shape: LlamaShape) -> dict[str, torch.Tensor]:
    """Every weight of the dense Llama, float32, by Hugging Face name, ``q_proj``/``k_proj`` in its rotary layout;
    exactly the tensors :func:`expected_shapes` names, with those shapes, or one DataError line."""
    where = reader.data.filename
    expected = expected_shapes(shape)
    tensors = {}
    for tensor in reader.tensors:
        name = hf_name(tensor.name)
        if name is None or name not in expected:
            continue
        value = dequantized(tensor)
        if tuple(value.shape) != expected[name]:
            raise DataError(f"{where}: {tensor.name} has shape {list(value.shape)}, the metadata needs "
                            f"{list(expected[name])}")
        if name.endswith("q_proj.weight"):
            value = undo_rotary_permutation(value, shape.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            value = undo_rotary_permutation(value, shape.num_key_value_heads)
        tensors[name] = value
    missing = sorted(expected.keys() - tensors.keys())
    if missing:
        raise DataError(f"{where}: {len(missing)} tensor(s) missing, e.g. {missing[0]}")
    return tensors
