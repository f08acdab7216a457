"""Edge behaviours: what an edge does to the experts and results it handles.

An honest edge computes what it is told. An attack is a subclass overriding one or more hooks
(withhold, tamper with the weights it computes with, with its outputs, or with its updated weights);
the protocol only calls the hooks, so a new attack is one file under ``edge/attacks`` and touches
nothing else. Every random choice comes from :class:`AttackContext`, derived from the run seed:
colluding attackers share the seed of a round (so they publish identical manipulated results),
independent attackers get their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

Weights = dict[str, torch.Tensor]


@dataclass(frozen=True)
class AttackContext:
    """Everything an attack may base a decision on, for one edge, one round, one expert."""

    round: int
    expert: int
    edge: int  # the edge's index
    run_seed: int
    collude: bool

    def _material(self, label: str, per_expert: bool) -> bytes:
        who = "colluders" if self.collude else f"edge{self.edge}"
        which = f"e{self.expert}" if per_expert else "all"
        return f"bmoe-attack|{self.run_seed}|{who}|r{self.round}|{which}|{label}".encode()

    def uniform(self, label: str) -> float:
        """A uniform draw in [0, 1) for this round (shared by colluders), the same for all experts."""
        digest = hashlib.sha256(self._material(label, per_expert=False)).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def generator(self, label: str) -> torch.Generator:
        """A torch generator for this round and expert (shared by colluders)."""
        digest = hashlib.sha256(self._material(label, per_expert=True)).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") & (2**63 - 1))


class EdgeBehaviour:
    """The honest edge. Attacks override hooks; ``None`` from a hook means "leave it as it is"."""

    name: ClassVar[str] = "honest"
    malicious: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        if params:
            raise ValueError(f"behaviour {self.name!r} takes no parameters, got {sorted(params)}")

    def withholds(self, ctx: AttackContext) -> bool:
        """True: the edge sends nothing for this expert this round."""
        return False

    def tamper_weights(self, ctx: AttackContext, weights: Weights) -> Weights | None:
        """Replace the expert's weights before computing (affects results and updates)."""
        return None

    def tamper_output(self, ctx: AttackContext, output: torch.Tensor) -> torch.Tensor | None:
        """Replace the expert's output before committing it."""
        return None

    def tamper_update(self, ctx: AttackContext, base: Weights, updated: Weights) -> Weights | None:
        """Replace the updated weights (the SGD step from ``base``) before committing them."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class Attack(EdgeBehaviour):
    """A malicious behaviour that strikes with ``probability`` per round (paper, Sec. V: 0.2)."""

    malicious: ClassVar[bool] = True
    defaults: ClassVar[dict[str, float]] = {}
    # [low, high] of each parameter; the default keeps a value finite and far from float32 overflow
    ranges: ClassVar[dict[str, tuple[float, float]]] = {}

    def __init__(self, probability: float = 0.2, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(f"attack {self.name!r} has no parameter(s) {', '.join(unknown)}")
        self.probability = _param(self.name, "probability", probability, (0.0, 1.0))
        self.params = {**self.defaults, **{key: _param(self.name, key, value, self.ranges.get(key, PARAM_RANGE))
                                           for key, value in params.items()}}

    def strikes(self, ctx: AttackContext) -> bool:
        return ctx.uniform("strike") < self.probability

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "probability": self.probability, **self.params}


PARAM_RANGE = (-1e6, 1e6)


def _param(attack: str, name: str, value: Any, bounds: tuple[float, float]) -> float:
    """A finite number in ``bounds``, or a one-line ValueError naming the attack and the parameter."""
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"attack {attack!r}: {name} must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


BEHAVIOURS: dict[str, type[EdgeBehaviour]] = {"honest": EdgeBehaviour}


def register(cls: type[EdgeBehaviour]) -> type[EdgeBehaviour]:
    """Class decorator adding a behaviour to the registry under its ``name``."""
    BEHAVIOURS[cls.name] = cls
    return cls


def make_behaviour(name: str, **params: Any) -> EdgeBehaviour:
    """Build a registered behaviour; unknown names and parameters raise ValueError."""
    from bmoe.edge import attacks  # noqa: F401  (registers the bundled attacks)

    if name not in BEHAVIOURS:
        raise ValueError(f"unknown attack {name!r}; choose one of {', '.join(sorted(BEHAVIOURS))}")
    return BEHAVIOURS[name](**params)


BehaviourFactory = Callable[..., EdgeBehaviour]
