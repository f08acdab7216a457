"""The PBFT replica: the concerns joined into one ``handle(event) -> actions`` state machine.

Owns the entry points: ``handle`` (deliver a message, tick the clock, propose a payload; every refusal
counted, never raised), the host controls outside the message flow (``restore`` from ``catchup``,
``ask_peers``, ``suspect_primary``), and the dispatch of a parsed message to its concern.

Must not know: what a payload means (the host's ``validate`` judges it), the transport, the clock
(only ``Tick`` tells the time), MoE or the ledger.
"""

from __future__ import annotations

from bmoe.consensus.engine import Action, Deliver, Event, Propose, Reason, Rejected, Tick
from bmoe.consensus.pbft.catchup import CatchUp
from bmoe.consensus.pbft.checkpoints import Checkpoints
from bmoe.consensus.pbft.core import ReplicaCore
from bmoe.consensus.pbft.ordering import Ordering
from bmoe.consensus.pbft.timers import Timers
from bmoe.consensus.pbft.view_change import ViewChange
from bmoe.consensus.pbft_messages import (
    CheckpointMessage,
    NewViewMessage,
    StatusMessage,
    ViewChangeMessage,
    VoteMessage,
    parse_message,
)
from bmoe.ledger.encoding import sha256_hex


class PbftReplica(Ordering, Checkpoints, ViewChange, CatchUp, Timers, ReplicaCore):
    """One PBFT replica. ``handle(event) -> actions``; never raises on network input."""

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
