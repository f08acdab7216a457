"""Which calls of a chunk are re-computed, by whom, and which edge answers a call on the fast path: all drawn from
seeds, so a seeded generation is the same every time and anyone holding the chunk's seed can re-derive them.

- **fast path**: each (layer, expert) call of a chunk goes to one edge, its *primary*, drawn per (chunk, slot)
  from the edges trusted to serve (an edge with a record against it serves no more in this generation);
- **check**: a call is re-computed with probability ``probability`` (1: every call; below 1, an audit), by
  ``replicas`` edges other than its primary, drawn per (chunk seed, slot); ``replicas`` as large as the edges
  allow re-computes it on every other edge (the paper's mode, ``all``).

Must not know: tensors, the ledger, the engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALL = 1 << 20  # "replicas: every other edge"


class PolicyError(ValueError):
    """A check policy that cannot be honoured."""


def _generator(*words: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([w & 0xFFFFFFFF for w in words]))


@dataclass(frozen=True)
class CheckPolicy:
    """How a chunk's calls are checked."""

    replicas: int = 1  # re-computing edges per checked call (ALL: every other edge)
    probability: float = 1.0  # a call is checked with this probability

    def __post_init__(self) -> None:
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int) or self.replicas < 1:
            raise PolicyError(f"replicas must be an integer >= 1, got {self.replicas!r}")
        p = self.probability
        if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p) or not 0 < p <= 1:
            raise PolicyError(f"the check probability must be in (0, 1], got {p!r}")

    @property
    def name(self) -> str:
        replicas = "all" if self.replicas >= ALL else f"r={self.replicas}"
        return replicas if self.probability == 1 else f"{replicas} p={self.probability:g}"

    def checked(self, seed: int, slot: int) -> bool:
        """Whether the call of ``slot`` is re-computed in the chunk of ``seed``."""
        return self.probability >= 1 or bool(_generator(seed, slot, 1).random() < self.probability)

    def replicas_for(self, seed: int, slot: int, candidates: Sequence[str]) -> list[str]:
        """The edges that re-compute the call of ``slot``: ``replicas`` of ``candidates`` (its primary left out
        by the caller), drawn from (``seed``, ``slot``), in ``candidates``' order."""
        if self.replicas >= len(candidates):
            return list(candidates)
        chosen = _generator(seed, slot, 2).choice(len(candidates), size=self.replicas, replace=False)
        return [candidates[i] for i in sorted(chosen.tolist())]


def primary_for(seed: int, chunk: int, slot: int, serving: Sequence[str]) -> str:
    """The edge that answers the call of ``slot`` on the fast path in ``chunk``."""
    if not serving:
        raise PolicyError("no edge is left to serve expert calls")
    return serving[int(_generator(seed, chunk, slot, 3).integers(len(serving)))]
