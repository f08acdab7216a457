"""PBFT's normal case: pre-prepare, prepare, commit, and executing a height.

Owns the three-phase flow of a height ``h`` in view ``v`` (quorum ``q = 2f + 1`` for ``n = 3f + 1``):

1. the primary takes the oldest queued payload that ``validate(h, payload)`` accepts and
   broadcasts PRE-PREPARE(v, h, digest) with the payload;
2. a backup that has executed ``h - 1`` re-runs ``validate``; if it accepts, it broadcasts
   PREPARE(v, h, digest); if not, it logs the reason and stays silent (a tampered proposal gets no
   quorum, and the request timers move the group to the next view);
3. with the pre-prepare and ``q - 1`` matching prepares the value is *prepared*: broadcast COMMIT;
4. with ``q`` matching commits (and the payload, and ``validate`` accepting it) the block is
   executed: ``Committed(h, digest, payload, certificate)``.

Votes for a view not yet installed wait in a bounded buffer until its NEW-VIEW arrives.

Must not know: what a payload means (the host's ``validate`` judges it), the transport, the clock.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from typing import Any

from bmoe.consensus.engine import Committed, Reason, Rejected, judge
from bmoe.consensus.pbft.core import DecidedBlock, ReplicaCore, Slot
from bmoe.consensus.pbft_messages import (
    COMMIT,
    PRE_PREPARE,
    PREPARE,
    PreparedCert,
    VoteMessage,
    encode_checkpoint,
    encode_vote,
    make_checkpoint,
    sign_vote,
)
from bmoe.consensus.pbft_rules import chain_digest, make_certificate
from bmoe.ledger.encoding import sha256_hex

log = logging.getLogger(__name__)


class Ordering(ReplicaCore):
    """Pre-prepare, prepare, commit and execution of one height after another."""

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
