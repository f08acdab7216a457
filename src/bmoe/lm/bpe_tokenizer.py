"""Owns the byte-level BPE tokenizer (GPT-2's scheme), trained offline with Hugging Face ``tokenizers``.

Byte-level: the text's UTF-8 bytes are the 256 base tokens and merges are learnt on top, so every string encodes
and decodes back exactly, with no unknown token. Training is deterministic given the text and the vocabulary
size (no special tokens, no normaliser, no prefix space). Saved as the library's own ``tokenizer.json`` bytes,
which any ``tokenizers`` (or ``transformers``) user loads with ``Tokenizer.from_str``.

This module must not know which text it is trained on.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from bmoe.data.errors import DataError

KIND = "bpe"
MIN_VOCAB = 256  # the byte alphabet: a smaller vocabulary could not encode every string
MAX_VOCAB = 2**16


class BPETokenizer:
    """A trained ``tokenizers.Tokenizer`` with a BPE model over bytes."""

    name = KIND

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer

    @classmethod
    def train(cls, text: str, vocab_size: int) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text`` (fewer if the text has fewer distinct pairs)."""
        if not MIN_VOCAB <= vocab_size <= MAX_VOCAB:
            raise DataError(f"a byte-level BPE vocabulary has {MIN_VOCAB} to {MAX_VOCAB} tokens, not {vocab_size}")
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      special_tokens=[], show_progress=False)
        tokenizer.train_from_iterator([text], trainer)
        return cls(tokenizer)

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        bad = next((i for i in ids if not 0 <= i < self.vocab_size), None)
        if bad is not None:
            raise DataError(f"token id {bad} is outside the BPE vocabulary [0, {self.vocab_size})")
        return self._tokenizer.decode(ids, skip_special_tokens=False)

    def to_bytes(self) -> bytes:
        return self._tokenizer.to_str().encode("utf-8")

    @classmethod
    def from_saved(cls, text: str) -> BPETokenizer:
        """The tokenizer :meth:`to_bytes` saved (``tokenizer.json``'s text)."""
        try:
            return cls(Tokenizer.from_str(text))
        except Exception as err:  # the library raises plain Exception for a malformed tokenizer.json
            raise DataError(f"not a tokenizer.json: {str(err).splitlines()[0] if str(err) else err!r}") from None
