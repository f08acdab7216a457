"""A PBFT replica (Castro & Liskov, OSDI '99) as a sans-IO state machine.

Owns one replica's protocol state: the view and whether it is installed, the message log per
(view, height) slot, the request queue, execution (one height at a time, in order), checkpoints
and garbage collection, the view-change timer with exponential back-off, and catch-up of a replica
that fell behind. Heights are PBFT's sequence numbers; the primary of view ``v`` is
``sorted(validators)[v mod n]``.

Must not know: what a payload means (the host's ``validate`` judges it), the transport, the clock
(only ``Tick`` tells the time), MoE or the ledger.

The flow of a height ``h`` in view ``v`` (quorum ``q = 2f + 1`` for ``n = 3f + 1``):

1. the primary takes the oldest queued payload that ``validate(h, payload)`` accepts and
   broadcasts PRE-PREPARE(v, h, digest) with the payload;
2. a backup that has executed ``h - 1`` re-runs ``validate``; if it accepts, it broadcasts
   PREPARE(v, h, digest); if not, it logs the reason and stays silent (a tampered proposal gets no
   quorum, and the request timers move the group to the next view);
3. with the pre-prepare and ``q - 1`` matching prepares the value is *prepared*: broadcast COMMIT;
4. with ``q`` matching commits (and the payload, and ``validate`` accepting it) the block is
   executed: ``Committed(h, digest, payload, certificate)``.

Every ``checkpoint_interval`` heights replicas sign CHECKPOINT(h, chain digest); ``q`` matching ones
make it stable and the logs at or below it are dropped.

When a replica has work pending (a queued request, or a pre-prepare in flight) and nothing commits
for ``timeout``, it first asks its peers for what it may have missed (STATUS: peers answer with
decided blocks and certificates, the current NEW-VIEW, or their votes); if another ``timeout``
passes, it moves to view ``v + 1`` and broadcasts VIEW-CHANGE with its last executed height (and
certificate) and its prepared certificate above it. ``f + 1`` view changes for higher views pull a
replica along. The new primary, with ``q`` of them, broadcasts NEW-VIEW re-proposing the prepared
value at the one height whose fate is open (see ``pbft_rules.select_reproposal``). Timeouts double
after every view change until a block commits.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bmoe.consensus.engine import (
    Action,
    Committed,
    Deliver,
    Event,
    Propose,
    Reason,
    Rejected,
    ReplicaStats,
    Send,
    SetTimer,
    Tick,
    Validate,
    judge,
)
from bmoe.consensus.pbft_messages import (
    COMMIT,
    DOMAIN,
    PRE_PREPARE,
    PREPARE,
    CheckpointMessage,
    DecidedMessage,
    NewViewMessage,
    PreparedCert,
    StatusMessage,
    ViewChangeMessage,
    Vote,
    VoteMessage,
    encode_checkpoint,
    encode_decided,
    encode_new_view,
    encode_status,
    encode_view_change,
    encode_vote,
    make_checkpoint,
    make_decided,
    make_new_view,
    make_status,
    make_view_change,
    parse_message,
    sign_vote,
)
from bmoe.consensus.pbft_rules import (
    GENESIS_DIGEST,
    certificate_error,
    chain_digest,
    make_certificate,
    max_faulty,
    new_view_error,
    primary_of,
    quorum,
    select_reproposal,
    view_change_error,
)
from bmoe.consensus.wire import MAX_NAME, SignatureChecker
from bmoe.ledger.encoding import canonical_json, sha256_hex
from bmoe.ledger.keys import Identity, is_address

log = logging.getLogger(__name__)


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


class PbftReplica:
    """One PBFT replica. ``handle(event) -> actions``; never raises on network input."""

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

    def handle(self, event: Event) -> list[Action]:
        self._out = []
        try:
            if isinstance(event, Deliver):
                self._on_deliver(event)
            elif isinstance(event, Tick):
                self._on_tick(event.now)
            elif isinstance(event, Propose):
                self._on_propose(event.payload)
            else:
                raise Rejected(Reason.MALFORMED, f"unknown event {type(event).__name__}")
        except Rejected as rejection:
            self._stats.reject(rejection)
        self._arm_timer()
        out, self._out = self._out, []
        return out

    # -- host controls (outside the message flow) ----------------------------------------------

    def restore(self, decided: Sequence[tuple[bytes, Mapping[str, Any]]], status_seq: int = 0) -> None:
        """Resume from the host's durable log, before the first event (a restarted process).

        ``decided`` holds heights 1, 2, … in order, each ``(payload, certificate)`` exactly as a
        ``Committed`` action gave them. ``status_seq`` must exceed every STATUS sequence number an
        earlier incarnation sent, or peers refuse its STATUS as a replay (a host passes its wall-clock
        time in nanoseconds). Raises ``ValueError`` on a log that does not chain."""
        if self.executed or self._stats.accepted or self.slots:
            raise ValueError("restore() must come before any event")
        state, digests = GENESIS_DIGEST, {0: GENESIS_DIGEST}
        kept: dict[int, DecidedBlock] = {}
        for height, (payload, cert) in enumerate(decided, start=1):
            digest = sha256_hex(payload)
            if cert.get("height") != height or cert.get("payload_hash") != digest:
                raise ValueError(f"decided block {height} does not match its certificate")
            state = chain_digest(state, height, digest)
            if height % self.config.checkpoint_interval == 0:
                digests[height] = state
            kept[height] = DecidedBlock(digest, bytes(payload), dict(cert))
        self.executed = len(kept)
        self.state_digest = state
        keep_from = self.executed - self.config.retain_decided
        self.decided = {h: b for h, b in kept.items() if h > keep_from}
        self.decided_hashes = {b.payload_hash: h for h, b in self.decided.items()}
        self.digests_at = {h: d for h, d in digests.items() if h == 0 or h > keep_from}
        self.status_seq = max(self.status_seq, status_seq)

    def ask_peers(self) -> list[Action]:
        """Broadcast STATUS now: peers answer with the decided blocks, NEW-VIEW or votes this replica
        lacks (a restarted replica learns its view and the heights it missed without waiting for work)."""
        self._out = []
        self._stats.events["status_request"] += 1
        self._send_status()
        out, self._out = self._out, []
        return out

    def suspect_primary(self, view: int) -> list[Action]:
        """Vote the primary of ``view`` out on the host's word: it saw a request go unserved that never
        reached this replica (the primary died before proposing). Nothing if the view has moved on."""
        if view != self.view or not self.active:
            return []
        self._out = []
        self._start_view_change(self.view + 1)
        self._arm_timer()
        out, self._out = self._out, []
        return out

    # -- inputs --------------------------------------------------------------------------------

    def _on_deliver(self, event: Deliver) -> None:
        msg = parse_message(event.message, self.validators, self.config.max_message_bytes, self._checker)
        raw = bytes(event.message)
        self._note_peer_height(msg)
        if isinstance(msg, VoteMessage):
            self._on_vote(msg, raw)
        elif isinstance(msg, CheckpointMessage):
            self._on_checkpoint(msg, raw)
        elif isinstance(msg, ViewChangeMessage):
            self._on_view_change(msg)
        elif isinstance(msg, NewViewMessage):
            self._on_new_view(msg, raw)
        elif isinstance(msg, StatusMessage):
            self._on_status(msg)
        else:
            self._on_decided(msg)
        self._stats.accepted += 1

    def _on_propose(self, payload: bytes) -> None:
        if not isinstance(payload, bytes):
            raise Rejected(Reason.MALFORMED, "payload must be bytes")
        if len(payload) > self.config.max_payload_bytes:
            raise Rejected(Reason.OVERSIZED, f"payload of {len(payload)} bytes")
        digest = sha256_hex(payload)
        if digest in self.decided_hashes or digest in self.queue:
            self._stats.events["duplicate_request"] += 1
            return
        if len(self.queue) >= self.config.max_queue:
            raise Rejected(Reason.OVERLOADED, "request queue is full")
        self.queue[digest] = payload
        self._advance()

    def _on_tick(self, now: float) -> None:
        self.now = max(self.now, now)
        if self.deadline is None or self.now < self.deadline:
            return
        self.deadline = None
        self._timer_sent = None
        if not self.active:
            self._start_view_change(self.view + 1)  # the new primary did not deliver
        elif self.stage == 0 or not self._work_in_flight():  # merely behind: keep asking, do not accuse
            self.stage = 1
            self._stats.events["status_request"] += 1
            self._send_status()
            self._retransmit()
            self.deadline = self.now + self._timeout()
        else:
            self._start_view_change(self.view + 1)

    # -- normal case: pre-prepare, prepare, commit ---------------------------------------------

    def _on_vote(self, msg: VoteMessage, raw: bytes) -> None:
        vote = msg.vote
        if vote.view < self.view:
            raise Rejected(Reason.WRONG_VIEW, f"{vote.kind} for view {vote.view} < {self.view}")
        if vote.view > self.view or not self.active:
            self._defer(msg, raw)
            return
        height = vote.height
        if not self.stable < height <= self.executed + self.config.window:
            raise Rejected(Reason.WRONG_HEIGHT, f"{vote.kind} at {height}, executed {self.executed}")
        key = hashlib.sha256(raw).digest()
        if key in self.seen.get(height, ()):
            raise Rejected(Reason.REPLAYED, f"{vote.kind} from {vote.sender} at {height}")
        if height <= self.executed:  # a vote that arrived after its quorum: harmless, nothing to do
            self.seen.setdefault(height, set()).add(key)
            self._stats.events["late_vote"] += 1
            return
        slot = self.slots.get((vote.view, height))
        primary = self.primary
        if vote.kind == PRE_PREPARE:
            if vote.sender != primary:
                raise Rejected(Reason.NOT_PRIMARY, f"pre-prepare from {vote.sender}, primary is {primary}")
            if height <= self.view_floor:
                raise Rejected(Reason.WRONG_HEIGHT, f"height {height} was fixed by the new view")
            if msg.payload is None or sha256_hex(msg.payload) != vote.digest:
                raise Rejected(Reason.BAD_DIGEST, "pre-prepare payload does not match its digest")
            previous = slot.pre_prepare if slot else None
        else:
            if vote.kind == PREPARE and vote.sender == primary:
                raise Rejected(Reason.NOT_PRIMARY, "the primary does not prepare")
            votes = (slot.prepares if vote.kind == PREPARE else slot.commits) if slot else {}
            previous = votes.get(vote.sender)
        if previous is not None:
            reason = Reason.REPLAYED if previous.digest == vote.digest else Reason.EQUIVOCATION
            raise Rejected(reason, f"second {vote.kind} from {vote.sender} at ({vote.view}, {height})")
        # -- accepted
        self.seen.setdefault(height, set()).add(key)
        slot = self._slot(vote.view, height)
        if vote.kind == PRE_PREPARE:
            assert msg.payload is not None
            slot.pre_prepare = vote
            self._remember_payload(height, vote.digest, msg.payload)
        elif vote.kind == PREPARE:
            slot.prepares[vote.sender] = vote
        else:
            slot.commits[vote.sender] = vote
        self._advance()

    def _defer(self, msg: VoteMessage, raw: bytes) -> None:
        """Keep a vote for a view this replica has not installed yet (the NEW-VIEW may be late)."""
        if msg.vote.view > self.view + self.config.future_views:
            raise Rejected(Reason.WRONG_VIEW, f"view {msg.vote.view} is too far ahead of {self.view}")
        mine = sum(1 for m, _ in self.future if m.vote.sender == msg.vote.sender)
        if mine >= self.config.max_future_per_sender:
            raise Rejected(Reason.OVERLOADED, f"future-view buffer full for {msg.vote.sender}")
        self.future.append((msg, raw))
        self._stats.events["deferred"] += 1

    def _replay_future(self) -> None:
        ready = [(m, raw) for m, raw in self.future if m.vote.view == self.view]
        self.future = [(m, raw) for m, raw in self.future if m.vote.view > self.view]
        for msg, raw in ready:
            try:
                self._on_vote(msg, raw)
            except Rejected as rejection:
                self._stats.reject(rejection)

    def _advance(self) -> None:
        """Do every step the log allows: prepare, commit, execute (repeatedly), then propose."""
        while self.active:
            height = self.executed + 1
            slot = self.slots.get((self.view, height))
            if slot is None:
                break
            self._maybe_prepare(height, slot)
            self._maybe_commit(height, slot)
            if not self._maybe_execute(height, slot):
                break
        self._maybe_propose()

    def _maybe_propose(self) -> None:
        if not (self.active and self.is_primary and self.executed >= self.view_floor):
            return
        height = self.executed + 1
        slot = self.slots.get((self.view, height))
        if slot is not None and slot.pre_prepare is not None:
            return
        while self.queue:
            digest, payload = next(iter(self.queue.items()))
            reason = judge(self.validate, height, payload)
            if reason is None:
                break
            del self.queue[digest]
            self._stats.events["invalid_request"] += 1
            log.info("%s: not proposing %s at %d: %s", self.name, digest[:12], height, reason)
        else:
            return
        vote = sign_vote(self._checker, self.identity, PRE_PREPARE, self.view, height, digest)
        slot = self._slot(self.view, height)
        slot.pre_prepare = vote
        self._remember_payload(height, digest, payload)
        self.verdicts[(height, digest)] = None
        self._broadcast(encode_vote(vote, payload), slot)

    def _maybe_prepare(self, height: int, slot: Slot) -> None:
        pp = slot.pre_prepare
        if pp is None or slot.sent_prepare or self.is_primary or self._verdict(height, pp.digest) is not None:
            return
        self._vote(PREPARE, height, pp.digest, slot)

    def _maybe_commit(self, height: int, slot: Slot) -> None:
        pp = slot.pre_prepare
        if pp is None or slot.sent_commit or not (slot.sent_prepare or self.is_primary):
            return
        backups = sorted((v for s, v in slot.prepares.items() if v.digest == pp.digest and s != pp.sender),
                         key=lambda v: v.sender)
        if len(backups) < self.q - 1:
            return
        previous = self.prepared.get(height)
        if previous is None or previous.view <= pp.view:
            self.prepared[height] = PreparedCert(pp, tuple(backups[: self.q - 1]))
        self._vote(COMMIT, height, pp.digest, slot)

    def _maybe_execute(self, height: int, slot: Slot) -> bool:
        """Execute with ``q`` matching commits: that is a commit certificate, whoever prepared."""
        counts = Counter(v.digest for v in slot.commits.values())
        decided = sorted(d for d, c in counts.items() if c >= self.q)
        if not decided:
            return False
        digest = decided[0]  # two would mean more than f Byzantine replicas (see the package notes)
        if digest not in self.payloads or self._verdict(height, digest) is not None:
            return False
        commits = {s: v.sig for s, v in slot.commits.items() if v.digest == digest}
        cert = make_certificate(self.view, height, digest, commits, self.q)
        self._execute(height, digest, self.payloads[digest][1], cert)
        return True

    def _vote(self, kind: str, height: int, digest: str, slot: Slot) -> None:
        vote = sign_vote(self._checker, self.identity, kind, self.view, height, digest)
        if kind == PREPARE:
            slot.prepares[self.name] = vote
            slot.sent_prepare = True
        else:
            slot.commits[self.name] = vote
            slot.sent_commit = True
        self._broadcast(encode_vote(vote), slot)

    def _verdict(self, height: int, digest: str) -> str | None:
        """The host's judgement of the payload with ``digest`` at ``height`` (asked once, remembered)."""
        key = (height, digest)
        if key not in self.verdicts:
            entry = self.payloads.get(digest)
            if entry is None:
                return "payload unknown"
            reason = judge(self.validate, height, entry[1])
            self.verdicts[key] = reason
            if reason is not None:
                self._stats.rejected[Reason.INVALID_PAYLOAD.value] += 1
                self.invalid_log.append((height, digest, reason))
                log.info("%s: refusing %s at height %d: %s", self.name, digest[:12], height, reason)
        return self.verdicts[key]

    def _execute(self, height: int, digest: str, payload: bytes, cert: dict[str, Any]) -> None:
        assert height == self.executed + 1, (height, self.executed)
        self.executed = height
        self.state_digest = chain_digest(self.state_digest, height, digest)
        self.decided[height] = DecidedBlock(digest, payload, cert)
        self.decided_hashes[digest] = height
        self.queue.pop(digest, None)
        for h in [h for h in self.prepared if h <= height]:
            del self.prepared[h]
        self.stage, self.backoff, self.deadline = 0, 0, None
        self._out.append(Committed(height, digest, payload, cert))
        self._stats.committed += 1
        if height % self.config.checkpoint_interval == 0:
            self.digests_at[height] = self.state_digest
            cp = make_checkpoint(self._checker, self.identity, height, self.state_digest)
            self.checkpoint_votes.setdefault(height, {})[self.name] = cp
            self._broadcast(encode_checkpoint(cp))
            self._check_stable(height)

    # -- checkpoints and garbage collection ----------------------------------------------------

    def _on_checkpoint(self, cp: CheckpointMessage, raw: bytes) -> None:
        if cp.height % self.config.checkpoint_interval != 0:
            raise Rejected(Reason.WRONG_HEIGHT, f"checkpoint at {cp.height} is not a checkpoint height")
        if not self.stable <= cp.height <= self.executed + self.config.window:
            raise Rejected(Reason.WRONG_HEIGHT, f"checkpoint at {cp.height}, stable {self.stable}")
        previous = self.checkpoint_votes.get(cp.height, {}).get(cp.sender)
        if previous is not None:
            reason = Reason.REPLAYED if previous.digest == cp.digest else Reason.EQUIVOCATION
            raise Rejected(reason, f"second checkpoint from {cp.sender} at {cp.height}")
        self.checkpoint_votes.setdefault(cp.height, {})[cp.sender] = cp
        self._check_stable(cp.height)

    def _check_stable(self, height: int) -> None:
        mine = self.digests_at.get(height)
        if mine is None or height <= self.stable:
            return
        matching = [cp for cp in self.checkpoint_votes.get(height, {}).values() if cp.digest == mine]
        if len(matching) < self.q:
            return
        self.stable = height
        self.stable_proof = tuple(sorted(matching, key=lambda cp: cp.sender))
        self._stats.events["stable_checkpoint"] += 1
        self._collect_garbage()

    def _collect_garbage(self) -> None:
        """Drop every log entry at or below the stable checkpoint (decided blocks: ``retain_decided`` more)."""
        s = self.stable
        before = len(self.slots)
        self.slots = {k: v for k, v in self.slots.items() if k[1] > s}
        self._stats.events["slots_collected"] += before - len(self.slots)
        self.seen = {h: v for h, v in self.seen.items() if h > s}
        self.checkpoint_votes = {h: v for h, v in self.checkpoint_votes.items() if h >= s}
        self.digests_at = {h: v for h, v in self.digests_at.items() if h >= s}
        self.verdicts = {k: v for k, v in self.verdicts.items() if k[0] > s}
        self.payloads = {d: v for d, v in self.payloads.items() if v[0] > s}
        keep_from = s - self.config.retain_decided
        for h in [h for h in self.decided if h <= keep_from]:
            self.decided_hashes.pop(self.decided.pop(h).payload_hash, None)

    # -- view change ---------------------------------------------------------------------------

    def _start_view_change(self, view: int) -> None:
        assert view > self.view or (view == self.view and not self.active)
        self.view, self.active = view, False
        self.slots = {k: v for k, v in self.slots.items() if k[0] >= view}
        prepared = self.prepared.get(self.executed + 1)
        payload = self._payload(prepared.digest) if prepared else None
        if payload is None:
            prepared = None
        cert = self.decided[self.executed].cert if self.executed else None
        vc = make_view_change(self._checker, self.identity, view, self.executed, cert, prepared, payload)
        self.latest_vc[self.name] = vc
        self.my_vc = encode_view_change(vc)
        self._broadcast(self.my_vc)
        self._stats.events["view_change"] += 1
        log.info("%s: view change to %d (executed %d)", self.name, view, self.executed)
        self.deadline = self.now + self._timeout()
        self.backoff = min(self.backoff + 1, self.config.max_backoff)
        self.stage = 0
        self._maybe_new_view()

    def _on_view_change(self, vc: ViewChangeMessage) -> None:
        if vc.view < self.view or (vc.view == self.view and self.active):
            raise Rejected(Reason.WRONG_VIEW, f"view change to {vc.view}, this replica is in {self.view}")
        previous = self.latest_vc.get(vc.sender)
        if previous is not None and vc.view <= previous.view:
            if vc.view < previous.view:
                raise Rejected(Reason.WRONG_VIEW, f"older view change from {vc.sender}")
            reason = Reason.REPLAYED if previous.sig == vc.sig else Reason.EQUIVOCATION
            raise Rejected(reason, f"second view change from {vc.sender} to {vc.view}")
        reason_text = view_change_error(vc, self.validators, self.names, self.f, need_payload=True,
                                        checker=self._checker)
        if reason_text:
            raise Rejected(Reason.BAD_CERTIFICATE, reason_text)
        self.latest_vc[vc.sender] = vc
        if vc.prepared is not None and vc.payload is not None:
            self._remember_payload(vc.prepared.height, vc.prepared.digest, vc.payload)
        if vc.executed < self.executed:
            self._send_decided(vc.sender, vc.executed + 1)
        self._maybe_join()
        self._maybe_new_view()

    def _maybe_join(self) -> None:
        """``f + 1`` view changes for higher views mean at least one honest replica gave up on this one."""
        higher = sorted(vc.view for s, vc in self.latest_vc.items() if s != self.name and vc.view > self.view)
        if len(higher) >= self.f + 1:
            self._start_view_change(higher[0])

    def _maybe_new_view(self) -> None:
        view = self.view
        if self.active or self.primary != self.name or self._new_view_built == view:
            return
        mine = self.latest_vc.get(self.name)
        others = [self.latest_vc[s] for s in self.names if s != self.name and s in self.latest_vc]
        vcs = [vc for vc in ([mine] if mine else []) + others if vc.view == view][: self.q]
        if len(vcs) < self.q:
            return
        _, chosen = select_reproposal(vcs)
        pp, payload = None, None
        if chosen is not None:
            payload = self._payload(chosen.digest)
            if payload is None:  # cannot happen: every accepted view change carries its payload
                log.error("%s: no payload for the prepared value %s", self.name, chosen.digest[:12])
                return
            pp = sign_vote(self._checker, self.identity, PRE_PREPARE, view, chosen.height, chosen.digest)
        nv = make_new_view(self._checker, self.identity, view, vcs, pp, payload)
        raw = encode_new_view(nv)
        self._new_view_built = view
        self._broadcast(raw)
        self._install_view(nv, raw)

    def _on_new_view(self, nv: NewViewMessage, raw: bytes) -> None:
        if nv.view < self.view or (nv.view == self.view and self.active):
            reason = Reason.REPLAYED if raw == self.new_view_message else Reason.WRONG_VIEW
            raise Rejected(reason, f"new view {nv.view}, this replica is in {self.view}")
        if nv.sender != primary_of(nv.view, self.names):
            raise Rejected(Reason.NOT_PRIMARY, f"new view {nv.view} from {nv.sender}")
        reason_text = new_view_error(nv, self.validators, self.names, self.f, self._checker)
        if reason_text:
            raise Rejected(Reason.BAD_NEW_VIEW, reason_text)
        self._install_view(nv, raw)

    def _install_view(self, nv: NewViewMessage, raw: bytes) -> None:
        self.view, self.active, self.new_view_message = nv.view, True, raw
        self.slots = {k: v for k, v in self.slots.items() if k[0] >= nv.view}
        self.latest_vc = {s: vc for s, vc in self.latest_vc.items() if vc.view > nv.view}
        self.my_vc = None
        self.stage, self.deadline = 0, None
        e_star, _ = select_reproposal(nv.view_changes)
        pp = nv.pre_prepare
        self.view_floor = max(e_star, pp.height if pp else 0)
        self._stats.events["new_view"] += 1
        log.info("%s: installed view %d (e*=%d, re-proposal %s)", self.name, nv.view, e_star,
                 None if pp is None else (pp.height, pp.digest[:12]))
        if pp is not None and nv.payload is not None:
            self._remember_payload(pp.height, pp.digest, nv.payload)
            slot = self._slot(nv.view, pp.height)
            slot.pre_prepare = pp
            if pp.height <= self.executed:
                self._confirm_reproposal(slot, pp)
        if e_star > self.executed:
            self._send_status()
        self._replay_future()
        self._advance()

    def _confirm_reproposal(self, slot: Slot, pp: Vote) -> None:
        """Vote again for a re-proposed height this replica already executed, so laggards can finish it."""
        block = self.decided.get(pp.height)
        if block is None:
            return
        if block.payload_hash != pp.digest:
            self._stats.events["conflicts_committed"] += 1  # only possible beyond f faults
            log.error("%s: new view re-proposes %s at %d, executed %s", self.name, pp.digest[:12], pp.height,
                      block.payload_hash[:12])
            return
        if not self.is_primary:
            self._vote(PREPARE, pp.height, pp.digest, slot)
        self._vote(COMMIT, pp.height, pp.digest, slot)

    # -- catch-up ------------------------------------------------------------------------------

    def _on_status(self, st: StatusMessage) -> None:
        if st.sender == self.name or st.seq <= self.peer_status.get(st.sender, 0):
            raise Rejected(Reason.REPLAYED, f"status {st.seq} from {st.sender}")
        last = self.last_help.get(st.sender)
        if last is not None and self.now - last[0] < self.config.timeout / 2 and st.executed <= last[1]:
            raise Rejected(Reason.RATE_LIMITED, f"status from {st.sender}")
        self.peer_status[st.sender] = st.seq
        self.last_help[st.sender] = (self.now, st.executed)
        if self.executed > st.executed:
            self._send_decided(st.sender, st.executed + 1)
        if self.active and self.new_view_message and (st.view < self.view or (st.view == self.view and st.waiting)):
            self._send(st.sender, self.new_view_message)
        if not self.active and self.my_vc is not None and st.view <= self.view:
            self._send(st.sender, self.my_vc)
        if self.active and st.view == self.view and not st.waiting and st.executed == self.executed:
            slot = self.slots.get((self.view, self.executed + 1))
            for raw in slot.own if slot else ():
                self._send(st.sender, raw)

    def _send_decided(self, peer: str, start: int) -> None:
        certs: list[dict[str, Any]] = []
        payloads: list[bytes] = []
        size, height = 1024, start
        while height <= self.executed and len(certs) < self.config.catchup_batch:
            block = self.decided.get(height)
            if block is None:
                break
            size += len(canonical_json(block.cert)) + len(block.payload) * 4 // 3 + 8
            if certs and size > self.config.max_message_bytes:
                break
            certs.append(block.cert)
            payloads.append(block.payload)
            height += 1
        if not certs:
            self._stats.events["cannot_help"] += 1  # the peer is behind what this replica retains
            return
        dm = make_decided(self._checker, self.identity, certs, payloads, more=height <= self.executed)
        self._send(peer, encode_decided(dm))

    def _on_decided(self, dm: DecidedMessage) -> None:
        todo: list[tuple[dict[str, Any], bytes]] = []
        next_height = self.executed + 1
        for cert, payload in zip(dm.certs, dm.payloads, strict=True):
            if cert["height"] < next_height:
                continue
            if cert["height"] != next_height:
                break
            reason = certificate_error(cert, self.validators, self.f, self._checker)
            if reason:
                raise Rejected(Reason.BAD_CERTIFICATE, f"decided block {next_height}: {reason}")
            if sha256_hex(payload) != cert["payload_hash"]:
                raise Rejected(Reason.BAD_DIGEST, f"decided block {next_height}")
            todo.append((cert, payload))
            next_height += 1
        if not todo:
            raise Rejected(Reason.WRONG_HEIGHT, f"nothing new in decided blocks from {dm.sender}")
        for cert, payload in todo:
            height, digest = cert["height"], cert["payload_hash"]
            self._remember_payload(height, digest, payload)
            if self._verdict(height, digest) is not None:
                break  # certified by a quorum yet refused here: the hosts disagree; do not follow
            self._execute(height, digest, payload, cert)
            self._stats.events["caught_up"] += 1
        if dm.more:
            self._send_status(dm.sender)
        self._advance()

    def _send_status(self, to: str | None = None) -> None:
        self.status_seq += 1
        st = make_status(self._checker, self.identity, self.view, self.executed, self.status_seq, not self.active)
        raw = encode_status(st)
        if to is None:
            self._broadcast(raw)
        else:
            self._send(to, raw)

    def _retransmit(self) -> None:
        if not self.active:
            if self.my_vc is not None:
                self._broadcast(self.my_vc)
            return
        slot = self.slots.get((self.view, self.executed + 1))
        for raw in slot.own if slot else ():
            self._broadcast(raw)
            self._stats.events["retransmitted"] += 1

    # -- helpers -------------------------------------------------------------------------------

    def _timeout(self) -> float:
        return self.config.timeout * (2**self.backoff)

    def _note_peer_height(self, msg: object) -> None:
        """An authenticated message shows how far its sender got (an honest one votes at executed + 1)."""
        if isinstance(msg, VoteMessage):
            sender, height = msg.vote.sender, msg.vote.height - 1
        elif isinstance(msg, CheckpointMessage):
            sender, height = msg.sender, msg.height
        elif isinstance(msg, StatusMessage | ViewChangeMessage):
            sender, height = msg.sender, msg.executed
        else:
            return
        if height > self.peer_heights.get(sender, 0):
            self.peer_heights[sender] = height

    def _behind(self) -> bool:
        """``f + 1`` peers (so at least one honest) have executed more than this replica."""
        heights = sorted(self.peer_heights.values(), reverse=True)
        return len(heights) > self.f and heights[self.f] > self.executed

    def _pending(self) -> bool:
        """Work that should finish in time: a queued request, a proposal in flight, an uninstalled view,
        or peers that are ahead (the timer then fetches what this replica missed)."""
        return not self.active or self._behind() or self._work_in_flight()

    def _work_in_flight(self) -> bool:
        """A queued request or a pre-prepare above the executed height: the primary owes progress."""
        if self.queue:
            return True
        return any(v == self.view and h > self.executed and s.pre_prepare is not None
                   for (v, h), s in self.slots.items())

    def _arm_timer(self) -> None:
        if not self._pending():
            self.deadline, self._timer_sent, self.stage = None, None, 0
            return
        if self.deadline is None:
            self.deadline = self.now + self._timeout()
        if self.deadline != self._timer_sent:
            self._timer_sent = self.deadline
            self._out.append(SetTimer(self.deadline))

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
