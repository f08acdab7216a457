"""The dynamic price of a generated token and how a chunk's charge is split: pure integer rules.

Everything is an integer (units, basis points), so every machine that replays the chain computes the same price and
the same split, to the unit.

**Load.** The validator measures the utilisation of the batch a chunk was decoded in: ``active`` sequences out of
the ``capacity`` the session decodes at most together (its max batch), in basis points,
``U = min(10000, floor(10000 x active / capacity))``. ``active`` is the number of distinct sequences in the chunk's
call records, so an audit recounts it from the records object.

**Price** per generated token, for a ``base`` price, bounded to ``[floor, cap]``::

    price(U) = min(cap, max(floor, floor_div(base x (5000 x 10000 + 2 x U^2), 10000^2)))

that is ``base x (1/2 + 2u^2)`` for ``u = U / 10000``: half the base price on an idle server, the base price at half
load, two and a half times it at full load; non-decreasing in the load, never below ``floor``, never above ``cap``.

**Split** of a chunk's charge ``C`` (the sum of what its payers pay): the validator that sealed the chunk earns
``floor(C x validator_bp / 10000)``; the rest is shared among the edges by the accepted calls each served in the chunk
(an edge's share ``floor(rest x calls_e / total_calls)``); what integer division leaves over goes to the validator, so
the credits add up to the charge exactly. A chunk whose edges served nothing pays its validator everything.

Must not know: transactions, the ledger's state, tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BASIS = 10_000  # basis points in one
MAX_PRICE = 10**9  # units per token: a chunk's charge stays an exact integer in JSON


class PricingError(ValueError):
    """Pricing settings that cannot hold (one line)."""


@dataclass(frozen=True)
class Pricing:
    """A session's price rule: its genesis section ``payments.pricing``."""

    base: int = 100  # units per token at half load
    floor: int = 50  # never less per token (an idle server)
    cap: int = 250  # never more per token (a full batch)
    capacity: int = 16  # sequences decoded together at most: the load's denominator (the session's max batch)
    validator_bp: int = 1000  # the validator's share of each chunk's charge, in basis points (10%)

    def __post_init__(self) -> None:
        for name in ("base", "floor", "cap", "capacity", "validator_bp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise PricingError(f"pricing {name} must be a non-negative integer, got {value!r}")
        if not 0 < self.floor <= self.cap <= MAX_PRICE:
            raise PricingError(f"pricing needs 0 < floor <= cap <= {MAX_PRICE}, got floor {self.floor}, cap {self.cap}")
        if self.base > MAX_PRICE:
            raise PricingError(f"pricing base {self.base} is above {MAX_PRICE}")
        if self.capacity < 1:
            raise PricingError("pricing capacity must be at least 1")
        if self.validator_bp > BASIS:
            raise PricingError(f"the validator's share is {self.validator_bp} basis points, more than {BASIS}")

    def spec(self) -> dict[str, int]:
        return {"base": self.base, "floor": self.floor, "cap": self.cap, "capacity": self.capacity,
                "validator_bp": self.validator_bp}

    @staticmethod
    def from_spec(spec: Mapping[str, Any]) -> Pricing:
        return Pricing(**{name: spec[name] for name in ("base", "floor", "cap", "capacity", "validator_bp")})


def utilisation_bp(active: int, capacity: int) -> int:
    """The load in basis points: ``active`` of ``capacity`` sequences, at most 10000."""
    return min(BASIS, BASIS * active // capacity)


def price_per_token(pricing: Pricing, active: int) -> int:
    """The rule's price per generated token when ``active`` sequences were decoded together (module docstring)."""
    load = utilisation_bp(active, pricing.capacity)
    raw = pricing.base * (BASIS * BASIS // 2 + 2 * load * load) // (BASIS * BASIS)
    return min(pricing.cap, max(pricing.floor, raw))


def split_charge(pricing: Pricing, charge: int, served: Mapping[str, int]) -> tuple[dict[str, int], int]:
    """Each edge's credit (edge -> units, only edges that served calls) and the validator's, adding up to
    ``charge``: the rule of the module docstring."""
    validator = charge * pricing.validator_bp // BASIS
    rest = charge - validator
    total = sum(served.values())
    if total == 0:
        return {}, charge
    credits = {edge: rest * calls // total for edge, calls in sorted(served.items()) if calls > 0}
    return credits, validator + rest - sum(credits.values())
