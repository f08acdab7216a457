"""The proof-of-work engine (the paper's): every block declares the genesis's difficulty and meets it.

The genesis section is ``{"engine": "pow", "difficulty": D}``. Whether a header's hash meets its
declared difficulty is a property of the block alone (``chain_check``); this engine adds that the
declared difficulty is the genesis's, so no proposer mines a cheaper chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bmoe.ledger.blocks import MAX_DIFFICULTY, Block


def is_int_in(value: object, low: int, high: int) -> bool:
    """``value`` is an int (not a bool) in [low, high]."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


@dataclass(frozen=True)
class PowRules:
    difficulty: int

    def block_error(self, block: Block) -> str | None:
        if block.certificate is not None:
            return "a PoW block must not carry a certificate"
        if block.header.difficulty != self.difficulty:
            return f"declares difficulty {block.header.difficulty}, the genesis fixes {self.difficulty}"
        return None

    def describe(self, validators: int) -> str:
        return f"proof of work at difficulty {self.difficulty} by {validators} genesis validator(s)"


class PowEngine:
    name = "pow"

    def rules(self, section: Mapping[str, Any], validators: frozenset[str]) -> PowRules:
        difficulty = section.get("difficulty")
        if not is_int_in(difficulty, 0, MAX_DIFFICULTY):
            raise ValueError(f"PoW difficulty must be an int in [0, {MAX_DIFFICULTY}]")
        assert isinstance(difficulty, int)
        return PowRules(difficulty)


POW_ENGINE = PowEngine()
