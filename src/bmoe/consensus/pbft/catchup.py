"""PBFT state transfer: a replica that fell behind, or restarted, catches up from certificates.

Owns: STATUS ("this is where I am"; peers answer with decided blocks and their commit certificates,
the current NEW-VIEW, or their votes), DECIDED (decided blocks, each checked by its certificate before
it is executed), retransmission of this replica's own votes, and ``restore``: resuming from the host's
durable log of decided blocks.

Must not know: the host's storage (it hands ``restore`` the decided blocks), the transport, the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bmoe.consensus.engine import Reason, Rejected
from bmoe.consensus.pbft.core import DecidedBlock, ReplicaCore
from bmoe.consensus.pbft_messages import (
    DecidedMessage,
    StatusMessage,
    encode_decided,
    encode_status,
    make_decided,
    make_status,
)
from bmoe.consensus.pbft_rules import GENESIS_DIGEST, certificate_error, chain_digest
from bmoe.ledger.encoding import canonical_json, sha256_hex


class CatchUp(ReplicaCore):
    """STATUS, DECIDED, retransmission and restore: how a replica learns what it missed."""

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
