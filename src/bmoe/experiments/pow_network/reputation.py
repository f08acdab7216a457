"""Reputation-aided hybrid PoW (the paper's future direction B) as pure arithmetic.

Owns the rule that turns a miner's reputation into its block difficulty, and how reputation moves:
``+reward`` for each of its blocks in the chain (a block is in the chain only if every honest miner
validated its payload), ``-penalty`` for each invalid block of its that another block proves
(evidence), clipped to ``[0, cap]``. Reputation is derived from the chain itself, block by block, so
every miner computes the same required difficulty for the same parent.

Effective difficulty: ``base - min(floor(log2(1 + reputation)), max_bonus_bits)``, never below
``min_difficulty``. Work stays ``2**difficulty``, so the chain's security still rests on hash power (an
easier block weighs less in fork choice, and finality is counted in work, not blocks); reputation only
decides who seals more often.

Must not know: blocks, signatures, validation or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ReputationRule:
    enabled: bool = False  # off: plain PoW as in the paper
    min_difficulty: int = 4  # absolute floor: never easier than this (bounds spam from trusted miners)
    max_bonus_bits: int = 4  # at most 16x fewer hashes than an unknown miner
    reward: int = 1  # per block of the miner in the chain
    penalty: int = 8  # per proven invalid block (a cheat costs many honest blocks)
    cap: int = 1 << 12
    evidence_window: int = 32  # evidence must be within this many heights of the block carrying it
    max_evidence: int = 4  # evidence items per block
    initial: tuple[tuple[str, int], ...] = ()  # genesis reputations, e.g. from an earlier epoch

    def __post_init__(self) -> None:
        for name in ("min_difficulty", "max_bonus_bits", "reward", "penalty", "cap", "evidence_window",
                     "max_evidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"ReputationRule.{name} must be a non-negative integer, got {value!r}")
        for miner, rep in self.initial:
            if not isinstance(miner, str) or isinstance(rep, bool) or not isinstance(rep, int) or rep < 0:
                raise ValueError(f"ReputationRule.initial: bad entry {(miner, rep)!r}")

    def genesis(self, miners: Iterable[str]) -> dict[str, int]:
        initial = dict(self.initial)
        return {m: min(self.cap, initial.get(m, 0)) for m in sorted(miners)}


def bonus_bits(reputation: int) -> int:
    """``floor(log2(1 + reputation))``."""
    return (1 + max(0, reputation)).bit_length() - 1


def effective_difficulty(base: int, reputation: int, rule: ReputationRule) -> int:
    if not rule.enabled:
        return base
    return max(min(rule.min_difficulty, base), base - min(bonus_bits(reputation), rule.max_bonus_bits))


def next_reputation(parent: Mapping[str, int], miner: str, accused: Iterable[str],
                    rule: ReputationRule) -> dict[str, int]:
    """Reputations after a block by ``miner`` that proves one invalid block of each of ``accused``."""
    rep = dict(parent)
    rep[miner] = min(rule.cap, rep.get(miner, 0) + rule.reward)
    for cheat in accused:
        rep[cheat] = max(0, rep.get(cheat, 0) - rule.penalty)
    return rep
