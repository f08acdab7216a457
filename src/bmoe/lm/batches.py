"""Owns turning text into the token tensor a language model trains on (its windows: ``lm/windows.py``).

This module must not know where the text comes from or which tokenizer made the ids.
"""

from __future__ import annotations

import torch

from .tokenizer import Tokenizer


def encode_corpus(tokenizer: Tokenizer, text: str) -> torch.Tensor:
    """``text``'s token ids, ``(n,)`` int64."""
    return torch.tensor(tokenizer.encode(text), dtype=torch.int64)

