"""PBFT view change and new view.

Owns: moving to view ``v + 1`` (VIEW-CHANGE with the last executed height, its certificate and the
prepared certificate above it), joining when ``f + 1`` peers have moved to higher views, the new
primary's NEW-VIEW with ``q`` view changes re-proposing the prepared value at the one height whose fate
is open (``pbft_rules.select_reproposal``), and installing a NEW-VIEW.

Must not know: when a view change is due (``timers`` decides), the transport, what a payload means.
"""

from __future__ import annotations

import logging

from bmoe.consensus.engine import Reason, Rejected
from bmoe.consensus.pbft.core import ReplicaCore, Slot
from bmoe.consensus.pbft_messages import (
    COMMIT,
    PRE_PREPARE,
    PREPARE,
    NewViewMessage,
    ViewChangeMessage,
    Vote,
    encode_new_view,
    encode_view_change,
    make_new_view,
    make_view_change,
    sign_vote,
)
from bmoe.consensus.pbft_rules import new_view_error, primary_of, select_reproposal, view_change_error

log = logging.getLogger(__name__)


class ViewChange(ReplicaCore):
    """VIEW-CHANGE and NEW-VIEW: replacing a primary without losing a prepared value."""

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
