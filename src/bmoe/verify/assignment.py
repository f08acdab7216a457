"""Assignment policies: which edges must compute an activated expert of a task.

- ``all`` (the paper's B-MoE): every edge computes every activated expert;
- ``host`` (the traditional framework): edge ``e mod M`` alone computes expert ``e``;
- ``sampled`` (``replicas`` = r): r of the M edges per (task, expert), drawn from a seed nobody can know
  before the task's activation is recorded: SHA-256 of the previous block's hash and the activation's
  CID. The ledger derives it from the chain itself, so every replica and ``bmoe audit`` recompute the
  same sample, and a commitment from an edge outside it is refused. The load is spread evenly: the
  edges are put in a seeded order and the task's activated experts take consecutive runs of r edges
  from it, so within a task no edge holds more than one expert more than another. A sample that is not
  unanimous (an edge withholds, or the answers differ) is disputed: the validators record a ``dispute``
  and the expert is escalated, in the same round, to every edge, and decided by the acceptance rule
  among all M answers (the ledger refuses a decision on a split sample that was not disputed).

Recorded in the genesis like a comparison: a policy without parameters by its name (``"all"``,
``"host"``, as every earlier chain records it), ``sampled`` as ``{"name": "sampled", "params":
{"replicas": r}}``. The error bound of a sample is ``verify/sampling_bound.py``'s.

Must not know tensors, the ledger or I/O: it sees edge addresses, expert indices and seed bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from bmoe.verify.specs import make_from_spec, spec_of


class AssignmentError(ValueError):
    """An assignment spec names no known policy, or gives it bad parameters (one line)."""


class Assignment(ABC):
    """A policy; subclasses are frozen dataclasses whose fields are the parameters."""

    name: ClassVar[str]
    needs_seed: ClassVar[bool] = False  # True: the sample depends on the task's seed
    escalates: ClassVar[bool] = False  # True: a split sample is disputed, escalated to every edge

    def spec(self) -> str | dict[str, Any]:
        """The genesis encoding: the name alone when there are no parameters."""
        return spec_of(self)

    @abstractmethod
    def assigned(self, edges: tuple[str, ...], expert: int, activated: tuple[int, ...],
                 seed: bytes) -> tuple[str, ...]:
        """The edges that must compute ``expert`` (one of the task's ``activated`` experts), in genesis order."""

    def check(self, edges: int) -> None:
        """Refuse parameters that do not fit a fleet of ``edges``."""
        return


@dataclasses.dataclass(frozen=True)
class All(Assignment):
    name: ClassVar[str] = "all"

    def assigned(self, edges: tuple[str, ...], expert: int, activated: tuple[int, ...],
                 seed: bytes) -> tuple[str, ...]:
        return edges


@dataclasses.dataclass(frozen=True)
class Host(Assignment):
    name: ClassVar[str] = "host"

    def assigned(self, edges: tuple[str, ...], expert: int, activated: tuple[int, ...],
                 seed: bytes) -> tuple[str, ...]:
        return (edges[expert % len(edges)],)


@dataclasses.dataclass(frozen=True)
class Sampled(Assignment):
    name: ClassVar[str] = "sampled"
    needs_seed: ClassVar[bool] = True
    escalates: ClassVar[bool] = True
    replicas: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int) or self.replicas < 1:
            raise AssignmentError(f"assignment sampled: replicas must be a whole number >= 1, got {self.replicas!r}")

    def check(self, edges: int) -> None:
        if self.replicas > edges:
            raise AssignmentError(f"assignment sampled: replicas r = {self.replicas} must be at most M = {edges}")

    def assigned(self, edges: tuple[str, ...], expert: int, activated: tuple[int, ...],
                 seed: bytes) -> tuple[str, ...]:
        order = sorted(edges, key=lambda edge: hashlib.sha256(seed + bytes.fromhex(edge)).digest())
        start = sorted(activated).index(expert) * self.replicas
        chosen = {order[(start + j) % len(order)] for j in range(self.replicas)}
        return tuple(edge for edge in edges if edge in chosen)


ASSIGNMENTS: Mapping[str, type[Assignment]] = {"all": All, "host": Host, "sampled": Sampled}


def make_assignment(spec: object) -> Assignment:
    """The policy a genesis (or a config) records: a name, or ``{"name": ..., "params": {...}}``."""
    return make_from_spec(spec, ASSIGNMENTS, "assignment", AssignmentError)


def task_seed(previous_block_hash: str, activation_cid: str) -> bytes:
    """The seed of a task's sample: known only once its activation is recorded on top of the chain."""
    return hashlib.sha256(bytes.fromhex(previous_block_hash) + activation_cid.encode()).digest()
