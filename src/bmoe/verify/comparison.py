"""The comparison in force: how two edges' results are judged "the same".

Owns the ``Comparison`` seam and its registry. A comparison says two things:

- ``key(data)``: what an edge commits for its result and what the ledger groups commitments by;
- ``same(a, b)``: what validators and audit check on the bytes themselves.

Its ``name`` and ``params`` are recorded in the genesis (``spec()``): a comparison without
parameters by its name alone (``"exact"``, as every chain so far records it), one with parameters
as ``{"name": ..., "params": {...}}``. A new comparison is one frozen dataclass (its fields are its
parameters) and one entry in :data:`COMPARISONS`.

``tolerance``: results and updates are the same when they are within a stated bound (its
parameters); the key is still the SHA-256 digest, and equal digests are the fast path. Closeness is
not transitive, so a tolerance comparison *records groups*: the proposer groups the answers from
their bytes (``protocol/comparisons/grouping.py``), the ledger checks the recorded groups' structure and applies
the acceptance rule to their sizes, and the re-executor and ``bmoe audit`` re-derive the groups and
the accepted value from the stored objects.

``integer``: experts computed in integer arithmetic (``moe/fixed_point.py``), so honest edges agree
bit for bit on any hardware; it compares like ``exact`` and is recorded under its own name, so a
chain says its experts were integer.

Must not know tensors, the ledger or I/O: it sees bytes and returns strings and booleans.

``exact``: equal canonical bytes (safetensors, sorted keys), keyed by their SHA-256 digest (the
same digest as ``storage.sha256_hex``; a test keeps them equal). Honest edges agree bit for bit only
under stated conditions: the same torch build and CPU kernels, the same thread count
(``torch.set_num_threads``), and the same batch composition (the same samples in the same order,
which the recorded activation fixes). Under ``exact`` a disagreement between honest edges is not
tolerated silently: the round raises :class:`HonestDisagreement` (see protocol) when edges known to
be honest split, and the ledger records the split as a failed verification either way.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC
from collections.abc import Mapping
from typing import Any, ClassVar

from bmoe.hash_memo import IdentityMemo
from bmoe.storage.cid import sha256_hex_of
from bmoe.verify.specs import make_from_spec, spec_of

_sha256_hex = IdentityMemo(sha256_hex_of)  # a small object's digest is its raw CID's: hashed once for both


class ComparisonError(ValueError):
    """A comparison spec names no known comparison, or gives it bad parameters (one line)."""


class Comparison(ABC):
    """How results are compared; subclasses are frozen dataclasses whose fields are the parameters."""

    name: ClassVar[str]

    @property
    def params(self) -> dict[str, Any]:
        """The parameters recorded in the genesis (empty for ``exact``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    records_groups: ClassVar[bool] = False  # True: groups come from the bytes and are recorded per decision
    has_bounds: ClassVar[bool] = False  # True: ``bound(phase)`` states how far apart answers may be (calibrated)

    def key(self, data: bytes) -> str:
        """What an edge commits for ``data`` and the ledger groups by: the SHA-256 digest (hex), remembered
        for a ``bytes`` object hashed recently (:mod:`bmoe.hash_memo`)."""
        return _sha256_hex(data)

    def matches(self, data: bytes, key: str) -> bool:
        """Whether ``data`` are what was committed under ``key``."""
        return self.key(data) == key

    def spec(self) -> str | dict[str, Any]:
        """The genesis encoding: the name alone when there are no parameters."""
        return spec_of(self)


@dataclasses.dataclass(frozen=True)
class Exact(Comparison):
    """Equal bytes; the key is their SHA-256 digest (hex)."""

    name: ClassVar[str] = "exact"


@dataclasses.dataclass(frozen=True)
class Integer(Exact):
    """Equal bytes of experts computed in integer arithmetic (bit-identical on any hardware)."""

    name: ClassVar[str] = "integer"


DEFAULT_RESULT_BOUND = 1e-4  # per-sample; calibrated honest maxima are ~1.5e-6 (docs/verification.md)
DEFAULT_UPDATE_BOUND = 1e-5  # |Δw| (weights up to 1); calibrated honest maxima: 1.5e-8 (MLP), 9.8e-7 (CNN, no oneDNN)
NORM_FLOOR = 0.1  # rows with a smaller norm are compared in absolute terms


@dataclasses.dataclass(frozen=True)
class Tolerance(Comparison):
    """Within a bound. A result (S, C) is the same as another when every row's
    ‖a - b‖₂ / max(‖a‖₂, ‖b‖₂, norm_floor) is at most ``result_bound`` (the calibrated ``per_sample``
    metric); updated weights when every element's |a - b| / max(1, |a|, |b|) is at most ``update_bound``
    (absolute for weights up to 1, relative above)."""

    name: ClassVar[str] = "tolerance"
    records_groups: ClassVar[bool] = True
    has_bounds: ClassVar[bool] = True
    result_bound: float = DEFAULT_RESULT_BOUND
    update_bound: float = DEFAULT_UPDATE_BOUND
    norm_floor: float = NORM_FLOOR

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, float) or not math.isfinite(value) or value <= 0:
                raise ComparisonError(f"comparison tolerance: {field.name} must be a finite number > 0, "
                                      f"got {value!r}")

    def bound(self, phase: str) -> float:
        """The bound of ``phase`` ("result" or "update")."""
        return self.result_bound if phase == "result" else self.update_bound


COMPARISONS: Mapping[str, type[Comparison]] = {"exact": Exact, "tolerance": Tolerance, "integer": Integer}
EXACT = Exact()


def make_comparison(spec: object) -> Comparison:
    """The comparison a genesis (or a config) records: a name, or ``{"name": ..., "params": {...}}``.

    Only the canonical encoding is accepted (a comparison without parameters is its name alone), so
    one comparison has one genesis encoding.
    """
    return make_from_spec(spec, COMPARISONS, "comparison", ComparisonError)


class HonestDisagreement(RuntimeError):
    """Honest replicas produced different bytes for the same expert, weights and input."""

    def __init__(self, task: str, expert: int, digests: dict[str, str]) -> None:
        listing = ", ".join(f"{edge[:8]}={digest[:12]}" for edge, digest in sorted(digests.items()))
        super().__init__(
            f"honest edges disagree on task {task} expert {expert} ({listing}); exact comparison needs "
            "the same torch build, the same thread count and the same batch composition on every edge"
        )
