"""Stake, rewards and slashing: each edge's balance, derived from the chain like everything else.

Recorded in the genesis only when a run enables it (``--stake``), as ``"economics": {"stakes": {edge:
amount}, "reward": R, "slash": X, "min_stake": m}``, in whole units (integers: balances are exact, the
same on every machine). The rules, applied by the state machine as it replays the chain:

- **enrolment**: every edge of the genesis starts with its stake (all the same from the CLI);
- **reward**: an edge in the accepted group of a decision (a result or an update) earns R;
- **slash**: an edge recorded as dissenting (its committed digest outside the accepted group, the
  evidence on the ledger) loses X, at most what it holds; the slashed units are burned. Withholding
  is recorded, not slashed: an answer lost to the network is not proof of a lie;
- **eligibility**: an edge holding less than m when a task's activation is recorded is not assigned
  any of that task's experts (and not counted in its acceptance rule). The set is fixed per task, so
  a slash in step 3 does not change who computes step 5.

Balances enter the state root only when economics is on, so every earlier chain keeps its roots.
Must not know tensors, transactions or I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_UNITS = 10**15  # a cap that keeps every balance an exact integer in JSON and float64


class EconomicsError(ValueError):
    """An economics setting or genesis section that cannot hold (one line)."""


@dataclass(frozen=True)
class Economics:
    stakes: Mapping[str, int]  # edge address -> stake at enrolment
    reward: int  # per accepted answer
    slash: int  # per proven dissent
    min_stake: int  # below it an edge is not assigned

    def __post_init__(self) -> None:
        for name, value in (("reward", self.reward), ("slash", self.slash), ("min stake", self.min_stake)):
            _units(name, value)
        for edge, stake in self.stakes.items():
            _units(f"stake of edge {edge[:8]}", stake)
            if self.slash > stake:
                raise EconomicsError(f"a slash of {self.slash} is larger than the stake {stake} of edge {edge[:8]}")
            if stake < self.min_stake:
                raise EconomicsError(f"edge {edge[:8]} enrols with {stake}, below the minimum stake {self.min_stake}: "
                                     "it could never be assigned")

    def spec(self) -> dict[str, Any]:
        """The genesis encoding."""
        return {"stakes": dict(sorted(self.stakes.items())), "reward": self.reward, "slash": self.slash,
                "min_stake": self.min_stake}

    @staticmethod
    def from_spec(spec: object, edges: tuple[str, ...]) -> Economics:
        """The genesis section (its field types are the schema's), checked against the enrolled edges."""
        if not isinstance(spec, Mapping) or set(spec) != {"stakes", "reward", "slash", "min_stake"}:
            raise EconomicsError("economics must hold exactly stakes, reward, slash and min_stake")
        stakes = spec["stakes"]
        if not isinstance(stakes, Mapping) or sorted(stakes) != sorted(edges):
            raise EconomicsError("economics: stakes must name every enrolled edge, and only those")
        return Economics(dict(stakes), spec["reward"], spec["slash"], spec["min_stake"])


@dataclass
class Balance:
    """One edge's account."""

    stake: int  # at enrolment
    earned: int = 0
    slashed: int = 0

    @property
    def balance(self) -> int:
        return self.stake + self.earned - self.slashed

    def slash(self, amount: int) -> int:
        """Take ``amount``, at most the balance; what was taken."""
        taken = min(amount, self.balance)
        self.slashed += taken
        return taken

    def to_dict(self) -> dict[str, int]:
        return {"stake": self.stake, "earned": self.earned, "slashed": self.slashed, "balance": self.balance}


def opening_balances(economics: Economics) -> dict[str, Balance]:
    return {edge: Balance(stake) for edge, stake in economics.stakes.items()}


def eligible_edges(edges: tuple[str, ...], balances: Mapping[str, Balance], min_stake: int) -> tuple[str, ...]:
    """The edges (in genesis order) holding at least ``min_stake``."""
    return tuple(edge for edge in edges if balances[edge].balance >= min_stake)


def _units(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNITS:
        raise EconomicsError(f"{name} must be a whole number of units in [0, {MAX_UNITS}], got {value!r}")
