"""The text a language model's run trains on: the corpus, its tokenizer and the token ids of both splits.

Must not know: the protocol, click.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bmoe.lm.batches import encode_corpus
from bmoe.lm.corpora import load_corpus
from bmoe.lm.tokenizer import Tokenizer, tokenizer_for_corpus


@dataclass(frozen=True)
class LMText:
    tokenizer: Tokenizer
    train_ids: torch.Tensor  # (n,) int64
    validation_ids: torch.Tensor  # (m,) int64: the held-out works
    characters_per_token: float  # of the validation text: bits per character = bits per token / this


def load_text(settings: Any, cache_dir: Path | None = None, tokenizer: Tokenizer | None = None) -> LMText:
    """The settings' corpus (fetched and checked, or cached), tokenized as they say (or by ``tokenizer``: a
    checkpoint's)."""
    corpus = load_corpus(settings.corpus, cache_dir)
    if tokenizer is None:
        vocab = settings.bpe_vocab if settings.tokenizer == "bpe" else None
        tokenizer = tokenizer_for_corpus(corpus, settings.tokenizer, vocab)
    train, validation = encode_corpus(tokenizer, corpus.train_text), encode_corpus(tokenizer, corpus.validation_text)
    return LMText(tokenizer, train, validation, len(corpus.validation_text) / max(1, validation.numel()))
