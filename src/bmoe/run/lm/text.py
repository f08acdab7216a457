"""The text a language model's run trains on: the corpus, its tokenizer and the token ids of both splits.

Must not know: the protocol, click.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bmoe.lm.corpus import load_shakespeare
from bmoe.lm.tokenizer import Tokenizer, tokenizer_for_corpus


@dataclass(frozen=True)
class LMText:
    tokenizer: Tokenizer
    train_ids: torch.Tensor  # (n,) int64
    validation_ids: torch.Tensor  # (m,) int64: the held-out works
    characters_per_token: float  # of the validation text: bits per character = bits per token / this


def load_text(settings: Any, cache_dir: Path | None = None) -> LMText:
    """The complete Shakespeare (fetched and checked, or cached), tokenized as ``settings`` say."""
    corpus = load_shakespeare(cache_dir)
    vocab = settings.bpe_vocab if settings.tokenizer == "bpe" else None
    tokenizer = tokenizer_for_corpus(corpus, settings.tokenizer, vocab)
    train = torch.tensor(tokenizer.encode(corpus.train_text), dtype=torch.int64)
    validation = torch.tensor(tokenizer.encode(corpus.validation_text), dtype=torch.int64)
    return LMText(tokenizer, train, validation, len(corpus.validation_text) / max(1, validation.numel()))
