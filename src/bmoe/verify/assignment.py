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
  among all M answers (the ledger refuses a decision on a split sample that was not disputed);
- ``adaptive`` (``replicas``, ``trusted_replicas``, ``trust_after``): ``sampled`` whose sample shrinks
  to ``trusted_replicas`` (at least 2) where the drawn edges have long honest records (:class:`Adaptive`).

Recorded in the genesis like a comparison: a policy without parameters by its name (``"all"``,
``"host"``, as every earlier chain records it), ``sampled`` as ``{"name": "sampled", "params":
{"replicas": r}}``. The error bound of a sample is ``verify/sampling_bound.py``'s.

Must not know tensors, the ledger or I/O: it sees edge addresses, expert indices and seed bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from bmoe.verify.specs import make_from_spec, spec_of


class AssignmentError(ValueError):
    """An assignment spec names no known policy, or gives it bad parameters (one line)."""


class Assignment(ABC):
    """A policy; subclasses are frozen dataclasses whose fields are the parameters."""

    name: ClassVar[str]
    needs_seed: ClassVar[bool] = False  # True: the sample depends on the task's seed
    escalates: ClassVar[bool] = False  # True: a split sample is disputed, escalated to every edge
    uses_trust: ClassVar[bool] = False  # True: the sample depends on which edges are trusted (their records)

    def spec(self) -> str | dict[str, Any]:
        """The genesis encoding: the name alone when there are no parameters."""
        return spec_of(self)

    @abstractmethod
    def assigned(self, edges: tuple[str, ...], expert: int, activated: tuple[int, ...],
                 seed: bytes, trusted: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """The edges that must compute ``expert`` (one of the task's ``activated`` experts), in genesis order.
        ``trusted``: the edges whose records earned trust when the task was activated (``adaptive``)."""

    def check(self, edges: int) -> None:
        """Refuse parameters that do not fit a fleet of ``edges``."""
        return


@dataclasses.dataclass(frozen=True)
class All(Assignment):
    name: ClassVar[str] = "all"

    def assigned(self, edges: tuple[str, ...], expert: int, activated: tuple[int, ...],
                 seed: bytes, trusted: frozenset[str] = frozenset()) -> tuple[str, ...]:
        return edges


@dataclasses.dataclass(frozen=True)
class Host(Assignment):
    name: ClassVar[str] = "host"

    def assigned(self, edges: tuple[str, ...], expert: int, activated: tuple[int, ...],
                 seed: bytes, trusted: frozenset[str] = frozenset()) -> tuple[str, ...]:
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
                 seed: bytes, trusted: frozenset[str] = frozenset()) -> tuple[str, ...]:
        # fewer edges than r (some below the minimum stake): every one of them
        return task_samples(self, edges, activated, seed, frozenset())[expert]

    def samples(self, edges: tuple[str, ...], activated: tuple[int, ...], seed: bytes,
                trusted: frozenset[str]) -> dict[int, tuple[str, ...]]:
        """Every activated expert's sample: the runs of :func:`consecutive_runs`, r edges long."""
        return consecutive_runs(edges, activated, seed, lambda run: self.replicas)


@dataclasses.dataclass(frozen=True)
class Adaptive(Assignment):
    """Sampled replication whose size follows the edges' records (BOINC's adaptive replication, made safe
    against an edge that can compute its own sample): an expert is computed by ``trusted_replicas`` edges
    when the first ``trusted_replicas`` edges the seed draws for it are all trusted, else by ``replicas``.
    An edge is trusted once ``trust_after`` of its answers in a row were accepted since its last dissent or
    withheld record (the ledger keeps that streak), so newcomers and accused edges are always checked by
    the full sample, and a trusted edge is still checked by at least one other edge: ``trusted_replicas``
    is at least 2. (A re-check drawn with probability below 1 from public randomness is one the edge can
    see coming; it would lie exactly when unchecked.)"""

    name: ClassVar[str] = "adaptive"
    needs_seed: ClassVar[bool] = True
    escalates: ClassVar[bool] = True
    uses_trust: ClassVar[bool] = True
    replicas: int = 3
    trusted_replicas: int = 2
    trust_after: int = 20

    def __post_init__(self) -> None:
        for name in ("replicas", "trusted_replicas", "trust_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AssignmentError(f"assignment adaptive: {name} must be a whole number >= 1, got {value!r}")
        if not 2 <= self.trusted_replicas <= self.replicas:
            raise AssignmentError(f"assignment adaptive: trusted replicas must be in [2, replicas = {self.replicas}] "
                                  f"(a trusted edge is still checked by another), got {self.trusted_replicas}")

    def check(self, edges: int) -> None:
        if self.replicas > edges:
            raise AssignmentError(f"assignment adaptive: replicas r = {self.replicas} must be at most M = {edges}")

    def sizes(self, edges: tuple[str, ...], activated: tuple[int, ...], seed: bytes,
              trusted: frozenset[str]) -> dict[int, tuple[str, ...]]:
        """Every activated expert's sample: the runs of :func:`consecutive_runs`, each as long as its first
        ``trusted_replicas`` edges allow."""
        def size(run: list[str]) -> int:
            trusted_run = all(edge in trusted for edge in run[:self.trusted_replicas])
            return self.trusted_replicas if trusted_run else self.replicas
        return consecutive_runs(edges, activated, seed, size)

    def assigned(self, edges: tuple[str, ...], expert: int, activated: tuple[int, ...],
                 seed: bytes, trusted: frozenset[str] = frozenset()) -> tuple[str, ...]:
        return task_samples(self, edges, activated, seed, trusted)[expert]

    def samples(self, edges: tuple[str, ...], activated: tuple[int, ...], seed: bytes,
                trusted: frozenset[str]) -> dict[int, tuple[str, ...]]:
        return self.sizes(edges, activated, seed, trusted)


@functools.lru_cache(maxsize=256)
def task_samples(policy: Sampled | Adaptive, edges: tuple[str, ...], activated: tuple[int, ...], seed: bytes,
                 trusted: frozenset[str]) -> Mapping[int, tuple[str, ...]]:
    """``policy.samples(...)``, drawn once per task (its seed) and fleet: a pure function of these (hashable,
    immutable) arguments that the ledger asks for each expert of each phase of a task, for every commitment
    and decision (read-only: every caller shares it)."""
    return MappingProxyType(policy.samples(edges, activated, seed, trusted))


def consecutive_runs(edges: tuple[str, ...], activated: tuple[int, ...], seed: bytes,
                     size: Callable[[list[str]], int]) -> dict[int, tuple[str, ...]]:
    """Every activated expert's sample (in genesis order): the experts, in index order, take consecutive
    runs of the seeded order, wrapping around, each ``size(the order from the run's start)`` edges long
    (at most every edge), so within a task the load stays spread."""
    order = seeded_order(edges, seed)
    samples: dict[int, tuple[str, ...]] = {}
    cursor = 0
    for expert in sorted(activated):
        run = order[cursor % len(order):] + order[:cursor % len(order)] if order else []
        length = min(len(order), size(run))
        chosen = set(run[:length])
        samples[expert] = tuple(edge for edge in edges if edge in chosen)
        cursor += length
    return samples


def seeded_order(edges: tuple[str, ...], seed: bytes) -> list[str]:
    """The edges in the order the task's seed draws them."""
    return sorted(edges, key=lambda edge: hashlib.sha256(seed + bytes.fromhex(edge)).digest())


ASSIGNMENTS: Mapping[str, type[Assignment]] = {"all": All, "host": Host, "sampled": Sampled, "adaptive": Adaptive}


def make_assignment(spec: object) -> Assignment:
    """The policy a genesis (or a config) records: a name, or ``{"name": ..., "params": {...}}``."""
    return make_from_spec(spec, ASSIGNMENTS, "assignment", AssignmentError)


def task_seed(previous_block_hash: str, activation_cid: str) -> bytes:
    """The seed of a task's sample: known only once its activation is recorded on top of the chain."""
    return hashlib.sha256(bytes.fromhex(previous_block_hash) + activation_cid.encode()).digest()
