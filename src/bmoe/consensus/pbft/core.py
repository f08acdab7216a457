"""One PBFT replica's state, its settings and the small helpers every concern shares.

Owns: :class:`PbftConfig`, the log entry of one (view, height) slot, a decided block, and
:class:`ReplicaCore`, which holds every field of a replica (view, message log, queue, execution,
checkpoints, timer, catch-up) and the helpers that read or append to it (``_slot``, ``_payload``,
``_broadcast``, ``_send``). The concerns (``ordering``, ``checkpoints``, ``view_change``, ``catchup``,
``timers``) are mixins over it; ``replica.PbftReplica`` joins them. A step one concern takes on
another's behalf is declared here, so each file reads on its own.

Must not know: the transport, the clock, what a payload means, MoE or the ledger.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bmoe.consensus.engine import Action, ReplicaStats, Send, Validate
from bmoe.consensus.pbft_messages import DOMAIN, CheckpointMessage, PreparedCert, ViewChangeMessage, Vote, VoteMessage
from bmoe.consensus.pbft_rules import GENESIS_DIGEST, max_faulty, primary_of, quorum
from bmoe.consensus.wire import MAX_NAME, SignatureChecker
from bmoe.ledger.keys import Identity, is_address


@dataclass(frozen=True)
class PbftConfig:
    """Settings of a PBFT replica; every replica of a group must use the same ones."""

    max_message_bytes: int = 1 << 20  # 1 MiB: a block body plus certificates; anything longer is refused
    checkpoint_interval: int = 8  # K: checkpoint (and garbage-collect) every K heights
    window: int = 32  # votes are taken for heights in (executed, executed + window]
    timeout: float = 1.0  # request timer (host clock units); ~10x the network delay is a fair start
    max_backoff: int = 6  # view-change timeouts double up to timeout * 2**max_backoff
    catchup_batch: int = 16  # decided blocks per DECIDED message
    retain_decided: int = 64  # decided blocks kept below the stable checkpoint, to help laggards
    future_views: int = 2  # votes for up to this many views ahead are buffered, not refused
    max_future_per_sender: int = 64  # ... at most this many per sender
    max_queue: int = 4096  # queued requests

    def __post_init__(self) -> None:
        ints = {"max_message_bytes": 4096, "checkpoint_interval": 1, "window": 2, "max_backoff": 0,
                "catchup_batch": 1, "retain_decided": 1, "future_views": 0, "max_future_per_sender": 0,
                "max_queue": 1}
        for name, minimum in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"PbftConfig.{name} must be an integer >= {minimum}, got {value!r}")
        if not isinstance(self.timeout, int | float) or not self.timeout > 0:
            raise ValueError(f"PbftConfig.timeout must be > 0, got {self.timeout!r}")
        if self.window < self.checkpoint_interval:
            raise ValueError("PbftConfig.window must be >= checkpoint_interval")

    @property
    def max_payload_bytes(self) -> int:
        """Largest payload whose base64 plus envelope fits in a message."""
        return (self.max_message_bytes - 4096) * 3 // 4


@dataclass
class Slot:
    """Everything logged for one (view, height)."""

    pre_prepare: Vote | None = None
    prepares: dict[str, Vote] = field(default_factory=dict)
    commits: dict[str, Vote] = field(default_factory=dict)
    own: list[bytes] = field(default_factory=list)  # this replica's messages here, for retransmission
    sent_prepare: bool = False
    sent_commit: bool = False


@dataclass(frozen=True)
class DecidedBlock:
    payload_hash: str
    payload: bytes
    cert: dict[str, Any]


class ReplicaCore:
    """The fields of one PBFT replica and the helpers that touch them; no protocol step of its own."""

    def __init__(
        self,
        identity: Identity,
        validators: Mapping[str, str],
        validate: Validate,
        config: PbftConfig | None = None,
    ) -> None:
        for name, address in validators.items():
            if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or not is_address(address):
                raise ValueError(f"bad validator entry {name!r}: {address!r}")
        if validators.get(identity.name) != identity.address:
            raise ValueError(f"{identity.name!r} is not a validator with this key")
        self.identity = identity
        self.validators = dict(validators)
        self.names = tuple(sorted(validators))
        self.n = len(self.names)
        self.f = max_faulty(self.n)
        self.q = quorum(self.n, self.f)
        self.validate = validate
        self.config = config or PbftConfig()
        self._checker = SignatureChecker(DOMAIN)
        self._stats = ReplicaStats()
        # view
        self.view = 0
        self.active = True  # False between sending VIEW-CHANGE(view) and installing NEW-VIEW(view)
        self.view_floor = 0  # heights <= this are fixed by the NEW-VIEW; no fresh proposal there
        self.new_view_message: bytes | None = None
        self.latest_vc: dict[str, ViewChangeMessage] = {}
        self.my_vc: bytes | None = None
        self._new_view_built = -1
        # ordering
        self.slots: dict[tuple[int, int], Slot] = {}
        self.payloads: dict[str, tuple[int, bytes]] = {}  # digest -> (height, payload)
        self.verdicts: dict[tuple[int, str], str | None] = {}
        self.prepared: dict[int, PreparedCert] = {}
        self.queue: dict[str, bytes] = {}
        self.seen: dict[int, set[bytes]] = {}
        self.future: list[tuple[VoteMessage, bytes]] = []
        # execution
        self.executed = 0
        self.state_digest = GENESIS_DIGEST
        self.decided: dict[int, DecidedBlock] = {}
        self.decided_hashes: dict[str, int] = {}
        self.digests_at: dict[int, str] = {0: GENESIS_DIGEST}
        # checkpoints
        self.checkpoint_votes: dict[int, dict[str, CheckpointMessage]] = {}
        self.stable = 0
        self.stable_proof: tuple[CheckpointMessage, ...] = ()
        # timer
        self.now = 0.0
        self.deadline: float | None = None
        self._timer_sent: float | None = None
        self.stage = 0  # 0: next expiry asks peers (STATUS); 1: next expiry changes view
        self.backoff = 0
        # catch-up
        self.status_seq = 0
        self.peer_status: dict[str, int] = {}
        self.last_help: dict[str, tuple[float, int]] = {}
        self.peer_heights: dict[str, int] = {}  # the highest height each peer has shown it executed
        self.invalid_log: deque[tuple[int, str, str]] = deque(maxlen=64)  # (height, digest, reason)
        self._out: list[Action] = []

    # -- the ConsensusReplica protocol ---------------------------------------------------------

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def stats(self) -> ReplicaStats:
        return self._stats

    @property
    def primary(self) -> str:
        return primary_of(self.view, self.names)

    @property
    def is_primary(self) -> bool:
        return self.primary == self.name

    # -- the log and the outbox -------------------------------------------------------------------

    def _slot(self, view: int, height: int) -> Slot:
        return self.slots.setdefault((view, height), Slot())

    def _remember_payload(self, height: int, digest: str, payload: bytes) -> None:
        if height > self.stable:
            self.payloads.setdefault(digest, (height, payload))

    def _payload(self, digest: str) -> bytes | None:
        entry = self.payloads.get(digest)
        if entry is not None:
            return entry[1]
        height = self.decided_hashes.get(digest)
        return None if height is None else self.decided[height].payload

    def _broadcast(self, raw: bytes, slot: Slot | None = None) -> None:
        if slot is not None:
            slot.own.append(raw)
        self._out.append(Send(None, raw))
        self._stats.sent += 1

    def _send(self, to: str, raw: bytes) -> None:
        self._out.append(Send(to, raw))
        self._stats.sent += 1

    # -- steps the concern files define (``replica.PbftReplica`` joins them) -------------------

    def _advance(self) -> None:
        raise NotImplementedError  # ordering.py

    def _replay_future(self) -> None:
        raise NotImplementedError  # ordering.py

    def _vote(self, kind: str, height: int, digest: str, slot: Slot) -> None:
        raise NotImplementedError  # ordering.py

    def _verdict(self, height: int, digest: str) -> str | None:
        raise NotImplementedError  # ordering.py

    def _execute(self, height: int, digest: str, payload: bytes, cert: dict[str, Any]) -> None:
        raise NotImplementedError  # ordering.py

    def _check_stable(self, height: int) -> None:
        raise NotImplementedError  # checkpoints.py

    def _start_view_change(self, view: int) -> None:
        raise NotImplementedError  # view_change.py

    def _send_status(self, to: str | None = None) -> None:
        raise NotImplementedError  # catchup.py

    def _send_decided(self, peer: str, start: int) -> None:
        raise NotImplementedError  # catchup.py

    def _retransmit(self) -> None:
        raise NotImplementedError  # catchup.py

    def _timeout(self) -> float:
        raise NotImplementedError  # timers.py
