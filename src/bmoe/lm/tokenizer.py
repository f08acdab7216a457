"""Owns what a tokenizer is to the rest of bmoe: the :class:`Tokenizer` protocol, the kinds (:data:`TOKENIZERS`),
building one for a corpus, and restoring one from its saved bytes (what a run stores by CID).

The character tokenizer is the default (exactly reversible, a vocabulary of 84 for Shakespeare, tiny embeddings);
the byte-level BPE is the option. The saved bytes record their kind: a character tokenizer's JSON says
``"kind": "char"``, a BPE's is a ``tokenizer.json`` whose model says ``"type": "BPE"``.

This module must not know how a corpus is fetched (``lm/corpus.py``) or how tokens are batched (``lm/batches.py``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Protocol

from bmoe.data.errors import DataError

from . import bpe_tokenizer, char_tokenizer
from .bpe_tokenizer import BPETokenizer
from .char_tokenizer import CharTokenizer

if TYPE_CHECKING:
    from .corpus import Corpus

TOKENIZERS = (char_tokenizer.KIND, bpe_tokenizer.KIND)  # the first is the default
DEFAULT_BPE_VOCAB = 1024  # 768 merges: ~2.3 characters a token on Shakespeare, an embedding a small model affords


class Tokenizer(Protocol):
    """Text <-> token ids in ``[0, vocab_size)``; ``decode(encode(s)) == s`` for every text it can encode."""

    @property
    def name(self) -> str: ...

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def to_bytes(self) -> bytes: ...


def tokenizer_for_corpus(corpus: Corpus, kind: str = char_tokenizer.KIND, vocab_size: int | None = None) -> Tokenizer:
    """The ``kind`` tokenizer for ``corpus``: characters read from every work (so training and validation both
    encode), or a BPE of ``vocab_size`` (default :data:`DEFAULT_BPE_VOCAB`) trained on the training works only."""
    if kind == char_tokenizer.KIND:
        if vocab_size is not None:
            raise DataError("a vocabulary size applies to the bpe tokenizer only (char's is the corpus's characters)")
        return CharTokenizer.from_text(corpus.text)
    if kind == bpe_tokenizer.KIND:
        return BPETokenizer.train(corpus.train_text, DEFAULT_BPE_VOCAB if vocab_size is None else vocab_size)
    raise DataError(f"unknown tokenizer {kind!r}: choose one of {', '.join(TOKENIZERS)}")


def tokenizer_from_bytes(data: bytes) -> Tokenizer:
    """The tokenizer whose :meth:`Tokenizer.to_bytes` gave ``data``, of whichever kind it records."""
    try:
        text = data.decode("utf-8")
        saved = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"saved tokenizer is not UTF-8 JSON ({err})") from None
    if isinstance(saved, dict) and saved.get("kind") == char_tokenizer.KIND:
        return CharTokenizer.from_saved(saved)
    model = saved.get("model") if isinstance(saved, dict) else None
    if isinstance(model, dict) and model.get("type") == "BPE":
        return BPETokenizer.from_saved(text)
    raise DataError("saved tokenizer is neither a character tokenizer nor a BPE tokenizer.json")
