"""The error bound of sampled replication: how likely a manipulated result is accepted when only r of
the M edges compute each (task, expert), and how many replicas a target needs.

A manipulated result is accepted without a dispute only if **every** sampled replica colludes (one
honest replica disagrees and escalates the expert to all M edges, where the majority rule decides).
With c colluders among M edges and r replicas drawn without replacement, uniformly:

    P(escape) = C(c, r) / C(M, r)        (0 once r > c)

and for a large fleet with colluding fraction f (draws independent): P(escape) = f^r. Escalation is
then bounded by the majority rule: it decides honestly while colluders are fewer than half of M, so
the bound holds only for c < M / 2 (f < 1/2); at or above it no r helps.

Over n independent decisions (tasks × activated experts), the chance that any manipulated result
escapes is at most ``1 - (1 - p)^n`` (≤ n·p).

Must not know the ledger or tensors: it is arithmetic over counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class BoundError(ValueError):
    """A bound asked of impossible inputs (one line)."""


def colluders(fraction: float, edges: int) -> int:
    """How many of ``edges`` collude at ``fraction``: rounded as a run config rounds its malicious ratio."""
    return int(fraction * edges + 0.5)


def escape_probability(fraction: float, replicas: int, edges: int | None = None) -> float:
    """P(every one of ``replicas`` sampled edges colludes) for one (task, expert); ``edges`` None: a fleet
    large enough that draws are independent (f^r)."""
    _check(fraction, replicas, edges)
    if edges is None:
        return fraction ** replicas
    bad = colluders(fraction, edges)
    return math.comb(bad, replicas) / math.comb(edges, replicas)


def replicas_needed(fraction: float, epsilon: float, edges: int | None = None) -> int | None:
    """The smallest r with escape probability ≤ ``epsilon``, or None when no r ≤ M reaches it (or the
    colluders are half the fleet or more, where escalation is not decided honestly)."""
    if not 0 < epsilon < 1:
        raise BoundError(f"epsilon must be in (0, 1), got {epsilon!r}")
    _check(fraction, 1, edges)
    if fraction >= 0.5 or (edges is not None and 2 * colluders(fraction, edges) >= edges):
        return None
    if fraction == 0:
        return 1
    if edges is None:
        return max(1, math.ceil(math.log(epsilon) / math.log(fraction) - 1e-12))
    return next((r for r in range(1, edges + 1) if escape_probability(fraction, r, edges) <= epsilon), None)


def any_escape(probability: float, decisions: int) -> float:
    """The chance that at least one of ``decisions`` independent decisions lets a manipulation through."""
    if decisions < 0:
        raise BoundError(f"decisions must be >= 0, got {decisions}")
    return -math.expm1(decisions * math.log1p(-probability)) if probability < 1 else float(decisions > 0)


@dataclass(frozen=True)
class BoundRow:
    replicas: int
    per_decision: float
    per_run: float


def bound_table(fraction: float, edges: int | None, decisions: int, most: int) -> list[BoundRow]:
    """Escape probabilities for r = 1 .. ``most`` (at most M), per decision and over ``decisions``."""
    top = most if edges is None else min(most, edges)
    return [BoundRow(r, p, any_escape(p, decisions))
            for r in range(1, top + 1) for p in (escape_probability(fraction, r, edges),)]


def _check(fraction: float, replicas: int, edges: int | None) -> None:
    if not (isinstance(fraction, float | int) and 0 <= fraction < 1):
        raise BoundError(f"the colluding fraction f must be in [0, 1), got {fraction!r}")
    if edges is not None and edges < 1:
        raise BoundError(f"the number of edges M must be >= 1, got {edges}")
    if replicas < 1 or (edges is not None and replicas > edges):
        raise BoundError(f"replicas r must be in [1, {edges if edges is not None else 'M'}], got {replicas}")
