"""The consensus interface: what a replica takes in, what it gives out, and how it counts refusals.

Owns the vocabulary shared by every engine (PBFT here, the PoW miners of ``bmoe.experiments.pow_network``)
and every host (the simulator, a network transport): the events (``Deliver``, ``Tick``, ``Propose``),
the actions (``Send``, ``Committed``, ``SetTimer``), the :class:`ConsensusReplica` protocol, the named
rejection reasons and the counters.

Must not know: MoE, tensors, the ledger's state machine, sockets or wall clocks. A proposal is an
opaque ``bytes`` payload; the host judges it through a ``validate(height, payload)`` callback that
returns ``None`` (valid) or the reason it is not. Replicas are sans-IO: ``handle(event)`` only
returns actions, so the same replica runs in the simulator or behind a network adapter.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Events in


@dataclass(frozen=True)
class Deliver:
    """Raw bytes from the network. ``sender`` is the transport's claim, not trusted for votes."""

    sender: str
    message: bytes


@dataclass(frozen=True)
class Tick:
    """The host's clock. A host delivers one at every ``SetTimer`` deadline, and may at any time."""

    now: float


@dataclass(frozen=True)
class Propose:
    """The host asks for ``payload`` (a serialised block body) to be sealed at a next height."""

    payload: bytes


Event = Deliver | Tick | Propose

# ---------------------------------------------------------------------------------------------
# Actions out


@dataclass(frozen=True)
class Send:
    """Send ``message`` to the peer ``to``; ``None`` broadcasts to every peer (not to oneself)."""

    to: str | None
    message: bytes


@dataclass(frozen=True, eq=True)
class Committed:
    """The block at ``height`` is final (PBFT) or ``k`` blocks deep (PoW), with its proof.

    ``proof`` is the PBFT commit certificate, or the PoW header, signature and work.
    """

    height: int
    payload_hash: str
    payload: bytes = field(repr=False)
    proof: dict[str, Any] = field(repr=False, compare=False, hash=False)


@dataclass(frozen=True)
class SetTimer:
    """Deliver a ``Tick`` no later than ``at`` (absolute, in the host's clock)."""

    at: float


Action = Send | Committed | SetTimer

Validate = Callable[[int, bytes], str | None]
"""``validate(height, payload)``: ``None`` when the host accepts the block at that height, else why not."""

# ---------------------------------------------------------------------------------------------
# Rejections


class Reason(StrEnum):
    """Why a replica refused an input. Every refusal is counted under one of these names."""

    OVERSIZED = "oversized"  # longer than the configured message limit
    MALFORMED = "malformed"  # not canonical JSON, wrong fields or types
    UNKNOWN_SENDER = "unknown_sender"  # signer is not a validator / miner
    BAD_SIGNATURE = "bad_signature"
    WRONG_VIEW = "wrong_view"  # PBFT: a view this replica is not (or no longer) in
    WRONG_HEIGHT = "wrong_height"  # outside the accepted window of heights
    REPLAYED = "replayed"  # an exact copy of a message already taken (honest retransmissions land here too)
    NOT_PRIMARY = "not_primary"  # a pre-prepare / new-view not from the view's primary, or a prepare from it
    EQUIVOCATION = "equivocation"  # a second, different vote from one sender for one slot
    BAD_DIGEST = "bad_digest"  # payload does not hash to the digest it travels with
    BAD_CERTIFICATE = "bad_certificate"  # a commit / prepared certificate that does not verify
    BAD_NEW_VIEW = "bad_new_view"  # a NEW-VIEW whose contents do not justify its proposal
    INVALID_PAYLOAD = "invalid_payload"  # validate(height, payload) returned a reason
    RATE_LIMITED = "rate_limited"  # a help request too soon after the last one
    INSUFFICIENT_WORK = "insufficient_work"  # PoW: hash does not meet the stated difficulty
    WRONG_DIFFICULTY = "wrong_difficulty"  # PoW: stated difficulty is not the one the chain requires
    INVALID_PARENT = "invalid_parent"  # PoW: extends a block already found invalid
    BAD_EVIDENCE = "bad_evidence"  # PoW: misbehaviour evidence that does not prove misbehaviour
    OVERLOADED = "overloaded"  # a bounded buffer is full


class Rejected(Exception):
    """A named, expected refusal of an input. Raised by guard clauses, caught and counted by ``handle``."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass
class ReplicaStats:
    """Counters of one replica: inputs accepted, refused by reason, and protocol happenings."""

    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    committed: int = 0
    events: Counter[str] = field(default_factory=Counter)  # view_change, new_view, reorg, mined, ...

    def reject(self, rejection: Rejected) -> None:
        self.rejected[rejection.reason.value] += 1
        log.debug("rejected %s", rejection)

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": dict(sorted(self.rejected.items())),
            "sent": self.sent,
            "committed": self.committed,
            "events": dict(sorted(self.events.items())),
        }


@runtime_checkable
class ConsensusReplica(Protocol):
    """A sans-IO consensus participant: events in, actions out, never raises on network input."""

    @property
    def name(self) -> str: ...

    @property
    def stats(self) -> ReplicaStats: ...

    def handle(self, event: Event) -> list[Action]: ...


def judge(validate: Validate, height: int, payload: bytes) -> str | None:
    """Call the host's ``validate``; a host that raises is read as a refusal, never propagated."""
    try:
        verdict = validate(height, payload)
    except Exception as exc:  # the payload came from the network: a crash in the host is a "no"
        return f"validate raised {type(exc).__name__}: {exc}"
    if verdict is not None and not isinstance(verdict, str):
        return f"validate returned {type(verdict).__name__}, expected str or None"
    if verdict == "":
        return "invalid (validate gave no reason)"
    return verdict
