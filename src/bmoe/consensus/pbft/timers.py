"""PBFT's request timer with exponential back-off.

Owns: when a replica has work pending (a queued request, a pre-prepare in flight, an uninstalled view,
or ``f + 1`` peers ahead) and nothing commits for ``timeout``, it first asks its peers (STATUS); if
another ``timeout`` passes, it moves to the next view. Timeouts double after every view change until
a block commits. The host's ``Tick`` is the only clock.

Must not know: the host's clock, the transport.
"""

from __future__ import annotations

from bmoe.consensus.engine import SetTimer
from bmoe.consensus.pbft.core import ReplicaCore
from bmoe.consensus.pbft_messages import CheckpointMessage, StatusMessage, ViewChangeMessage, VoteMessage


class Timers(ReplicaCore):
    """The request timer: ask peers, then change view; ``SetTimer`` tells the host when to tick."""

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
