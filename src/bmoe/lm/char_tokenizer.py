"""Owns the character-level tokenizer: one id per character, ids in the characters' sorted order (nanoGPT's
``shakespeare_char``), exactly reversible on every text whose characters it has.

Saved as canonical JSON, ``{"chars":"...","kind":"char"}`` in UTF-8: the same vocabulary gives the same bytes.
This module must not know which text its vocabulary came from.
"""

from __future__ import annotations

import json

import numpy as np

from bmoe.data.errors import DataError

KIND = "char"


class CharTokenizer:
    """Character ``i`` of the sorted vocabulary is token ``i``."""

    name = KIND

    def __init__(self, chars: str) -> None:
        if not chars or list(chars) != sorted(set(chars)):
            raise DataError("a character tokenizer needs a non-empty vocabulary of distinct characters, sorted")
        self.chars = chars
        self._codes = np.frombuffer(chars.encode("utf-32-le"), dtype="<u4")  # (V,) code points, ascending

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose vocabulary is every character of ``text``."""
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")  # (n,) code points
        ids = np.searchsorted(self._codes, codes).clip(max=len(self._codes) - 1)  # (n,)
        unknown = np.flatnonzero(self._codes[ids] != codes)
        if unknown.size:
            char = text[int(unknown[0])]
            raise DataError(f"character {char!r} (at {int(unknown[0])}) is not in the tokenizer's vocabulary "
                            f"of {self.vocab_size} characters")
        return ids.tolist()

    def decode(self, ids: list[int]) -> str:
        index = np.asarray(ids, dtype=np.int64)  # (n,)
        if index.size and (index.min() < 0 or index.max() >= self.vocab_size):
            bad = int(index[(index < 0) | (index >= self.vocab_size)][0])
            raise DataError(f"token id {bad} is outside the character vocabulary [0, {self.vocab_size})")
        return self._codes[index].tobytes().decode("utf-32-le")

    def to_bytes(self) -> bytes:
        return json.dumps({"kind": KIND, "chars": self.chars}, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_saved(cls, saved: dict[str, object]) -> CharTokenizer:
        """The tokenizer :meth:`to_bytes` saved, from its parsed JSON."""
        chars = saved.get("chars")
        if set(saved) != {"kind", "chars"} or not isinstance(chars, str):
            raise DataError("a saved character tokenizer has exactly the keys 'kind' and 'chars' (a string)")
        return cls(chars)
