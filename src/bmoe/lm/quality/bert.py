"""Owns a BERT encoder's forward pass in torch (Devlin et al. 2019), read from the weights of a Hugging Face
``BertModel`` checkpoint under their own names (``embeddings.word_embeddings.weight``,
``encoder.layer.{i}.attention.self.query.weight``...), so the same file loads in transformers unchanged.

Post-layer-norm blocks, GELU (erf) feed-forward, absolute positions, one token type (0), an attention mask over
padding. Inference only: no dropout, no pooler (a sentence encoder pools the last hidden states itself).

Must not know: tokenizers, pooling, where the weights came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bmoe.data.errors import DataError


@dataclass(frozen=True)
class BertConfig:
    """A BERT's shape, in transformers' ``BertConfig`` names (the checkpoint's ``config.json``)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float

    @classmethod
    def from_json(cls, values: dict[str, Any], origin: str) -> BertConfig:
        """The shape in ``values`` (a ``config.json``); one DataError line for what this encoder does not run."""
        if values.get("model_type") != "bert" or values.get("hidden_act", "gelu") != "gelu" or \
                values.get("position_embedding_type", "absolute") != "absolute":
            raise DataError(f"{origin}: not a BERT with GELU and absolute positions")
        try:
            config = cls(**{name: values[name] for name in cls.__dataclass_fields__})
        except KeyError as err:
            raise DataError(f"{origin}: config.json has no {err.args[0]}") from None
        if config.hidden_size % config.num_attention_heads:
            raise DataError(f"{origin}: hidden_size {config.hidden_size} is not a multiple of the heads")
        return config


class BertLayer(nn.Module):
    """Self-attention then a feed-forward, each added to its input and layer-normalised (post-norm)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        d, eps = config.hidden_size, config.layer_norm_eps
        self.heads = config.num_attention_heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attention_out, self.attention_norm = nn.Linear(d, d), nn.LayerNorm(d, eps=eps)
        self.intermediate, self.output = nn.Linear(d, config.intermediate_size), nn.Linear(config.intermediate_size, d)
        self.output_norm = nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        hd = d // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, T, self.heads, hd).transpose(1, 2)  # (B, h, T, hd)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + bias  # (B, h, T, T)
        context = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, d)  # (B, T, d)
        x = self.attention_norm(x + self.attention_out(context))
        return self.output_norm(x + self.output(F.gelu(self.intermediate(x))))  # (B, T, d)


class BertEncoder(nn.Module):
    """Token ids (B, T) and their mask (B, T) -> the last layer's hidden states (B, T, d)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.config = config
        self.word = nn.Embedding(config.vocab_size, d)
        self.position = nn.Embedding(config.max_position_embeddings, d)
        self.token_type = nn.Embedding(config.type_vocab_size, d)
        self.embedding_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        positions = torch.arange(T, device=ids.device)  # (T,)
        x = self.word(ids) + self.position(positions) + self.token_type(torch.zeros_like(ids))  # (B, T, d)
        x = self.embedding_norm(x)
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min  # (B, 1, 1, T)
        for layer in self.layers:
            x = layer(x, bias)
        return x


# this module's parameter names -> the checkpoint's (transformers' BertModel)
EMBEDDING_NAMES = {"word": "embeddings.word_embeddings", "position": "embeddings.position_embeddings",
                   "token_type": "embeddings.token_type_embeddings", "embedding_norm": "embeddings.LayerNorm"}
LAYER_NAMES = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
               "attention_out": "attention.output.dense", "attention_norm": "attention.output.LayerNorm",
               "intermediate": "intermediate.dense", "output": "output.dense", "output_norm": "output.LayerNorm"}


def checkpoint_name(name: str) -> str:
    """The checkpoint's name of this module's parameter ``name`` (``layers.0.query.weight`` ->
    ``encoder.layer.0.attention.self.query.weight``)."""
    parts = name.split(".")
    if parts[0] == "layers":
        return f"encoder.layer.{parts[1]}.{LAYER_NAMES[parts[2]]}.{parts[3]}"
    return f"{EMBEDDING_NAMES[parts[0]]}.{parts[1]}"


def load_bert(config: BertConfig, tensors: dict[str, torch.Tensor], origin: str) -> BertEncoder:
    """A BertEncoder of ``config`` holding ``tensors`` (a checkpoint's, by its names), in eval mode, float32; one
    DataError line for a missing or mis-shaped tensor. Tensors it does not use (the pooler) are ignored."""
    model = BertEncoder(config)
    state = {}
    for name, parameter in model.state_dict().items():
        source = checkpoint_name(name)
        if source not in tensors:
            raise DataError(f"{origin}: the checkpoint has no {source}")
        if tuple(tensors[source].shape) != tuple(parameter.shape):
            raise DataError(f"{origin}: {source} is {tuple(tensors[source].shape)}, expected {tuple(parameter.shape)}")
        state[name] = tensors[source].float()
    model.load_state_dict(state)
    return model.eval()
