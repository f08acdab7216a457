"""Acceptance rules: which of the edges' committed results (if any) the ledger accepts.

Pure functions over digests; no tensors, no I/O. Per (task, expert) the commitments are grouped
by digest (the comparison rule "exact": equal canonical bytes). A group is accepted when it meets
the rule; otherwise nothing is accepted and the aggregation renormalises without that expert. With no
accepted group there is no answer to dissent from: the edges that answered are ``unresolved``, not
dissenters (DESIGN.md: "A record needs proof").

Rules (B-MoE Sec. III-C uses the majority; the others are settings):
- ``majority``: a group of more than half of *all* M assigned edges (withholding counts against);
- ``fraction``: a group of at least ``ceil(q * M)`` edges, e.g. q = 2/3;
- ``plurality``: the strictly largest group, whatever its size (a tie accepts nothing);
- ``sole``: exactly one assigned edge, accepted unverified (the traditional framework).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

RULES = ("majority", "fraction", "plurality", "sole")


@dataclass(frozen=True)
class AcceptanceRule:
    """A named rule; ``fraction`` is only read by the ``fraction`` rule."""

    name: str = "majority"
    fraction: float = 2 / 3

    def __post_init__(self) -> None:
        if self.name not in RULES:
            raise ValueError(f"unknown acceptance rule {self.name!r}; choose one of {', '.join(RULES)}")
        if self.name == "fraction" and not 0 < self.fraction <= 1:
            raise ValueError(f"acceptance fraction must be in (0, 1], got {self.fraction}")

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "fraction": self.fraction}

    @staticmethod
    def from_dict(data: Mapping[str, object]) -> AcceptanceRule:
        return AcceptanceRule(name=str(data["name"]), fraction=float(data["fraction"]))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Verdict:
    """The outcome for one (task, expert): the accepted digest or None, and who agreed."""

    digest: str | None
    supporters: tuple[str, ...]  # edges in the accepted group, sorted
    dissenters: tuple[str, ...]  # edges that committed another digest than the accepted one, sorted
    missing: tuple[str, ...]  # assigned edges that committed nothing, sorted
    group_sizes: dict[str, int] = field(default_factory=dict)
    unresolved: tuple[str, ...] = ()  # no group met the rule: the edges that committed, sorted

    @property
    def accepted(self) -> bool:
        return self.digest is not None

    @property
    def committed(self) -> tuple[str, ...]:
        """Every assigned edge that committed, sorted."""
        return tuple(sorted(self.supporters + self.dissenters + self.unresolved))


def required_votes(rule: AcceptanceRule, assigned: int) -> int:
    """Smallest group that meets a quorum rule among ``assigned`` edges (0 for plurality)."""
    if rule.name == "majority":
        return assigned // 2 + 1
    if rule.name == "fraction":
        return max(1, math.ceil(rule.fraction * assigned - 1e-9))
    if rule.name == "sole":
        return 1
    return 0


def decide(rule: AcceptanceRule, commitments: Mapping[str, str], assigned: tuple[str, ...]) -> Verdict:
    """Apply ``rule`` to ``commitments`` (edge -> digest) from the ``assigned`` edges.

    Commitments from edges that were not assigned are ignored (the ledger refuses them earlier).
    """
    votes = {edge: digest for edge, digest in commitments.items() if edge in assigned}
    groups: dict[str, list[str]] = {}
    for edge, digest in votes.items():
        groups.setdefault(digest, []).append(edge)
    sizes = {digest: len(edges) for digest, edges in groups.items()}
    missing = tuple(sorted(edge for edge in assigned if edge not in votes))
    winner = _winner(rule, sizes, len(assigned))
    if winner is None:
        return Verdict(None, (), (), missing, sizes, tuple(sorted(votes)))
    supporters = tuple(sorted(groups[winner]))
    dissenters = tuple(sorted(edge for edge in votes if votes[edge] != winner))
    return Verdict(winner, supporters, dissenters, missing, sizes)


def _winner(rule: AcceptanceRule, sizes: Mapping[str, int], assigned: int) -> str | None:
    if not sizes:
        return None
    ranked = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
    best_digest, best_size = ranked[0]
    if rule.name == "sole":
        return best_digest if assigned == 1 and best_size == 1 else None
    if rule.name == "plurality":
        tied = len(ranked) > 1 and ranked[1][1] == best_size
        return None if tied else best_digest
    return best_digest if best_size >= required_votes(rule, assigned) else None


def meets_rule(rule: AcceptanceRule, size: int, assigned: int, largest_other: int) -> bool:
    """Whether a group of ``size`` among ``assigned`` edges meets ``rule`` when the largest other group
    has ``largest_other`` edges."""
    if rule.name == "sole":
        return assigned == 1 and size == 1
    if rule.name == "plurality":
        return size > largest_other
    return size >= required_votes(rule, assigned)
