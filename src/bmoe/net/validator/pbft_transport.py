"""A network host for one sans-IO :class:`~bmoe.consensus.pbft.PbftReplica`: signed HTTP between validators.

Owns the hosting contract of ``consensus/sim.py``, over sockets and a wall clock:

- every event goes to the replica under one lock, preceded by a ``Tick`` with the current time;
- a timer thread delivers a ``Tick`` every ``tick_s`` (a host may tick at any time; this covers every
  ``SetTimer`` deadline within ``tick_s``);
- ``Send`` actions are queued, per peer, on a bounded queue (oldest dropped when full) and POSTed in the
  background to the peer's ``POST /consensus`` as signed requests, with short timeouts; a lost message
  is PBFT's problem (retransmission and catch-up), never the caller's;
- ``POST /consensus`` bodies (raw replica messages) become ``Deliver`` events, sender = the enrolled
  validator name of the request's signer;
- ``Committed`` actions are handed to ``on_commit`` (still under the lock, in height order).

Must not know: the ledger, MoE, the round. The host's ``validate`` is the replica's judge.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

import httpx

from bmoe.consensus.engine import Action, Committed, Deliver, Event, Propose, Send, Tick
from bmoe.consensus.pbft import PbftReplica
from bmoe.ledger.keys import Identity
from bmoe.net.http.auth import SignedAuth
from bmoe.net.http.tcp import client_transport

SEND_TIMEOUT_S = 1.0
TICK_S = 0.05
MAX_OUTBOX = 512


class _Peer:
    """One peer's outbox and its sender thread."""

    def __init__(self, name: str, url: str, auth: SignedAuth, max_outbox: int) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.outbox: deque[bytes] = deque(maxlen=max_outbox)
        self.cond = threading.Condition()
        self.client = httpx.Client(auth=auth, timeout=httpx.Timeout(SEND_TIMEOUT_S, connect=SEND_TIMEOUT_S),
                                   transport=client_transport())
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def put(self, message: bytes) -> None:
        with self.cond:
            if len(self.outbox) == self.outbox.maxlen:
                self.dropped += 1
            self.outbox.append(message)
            self.cond.notify()

    def run(self, stopping: Callable[[], bool]) -> None:
        while True:
            with self.cond:
                while not self.outbox and not stopping():
                    self.cond.wait(0.5)
                if stopping():
                    return
                message = self.outbox.popleft()
            try:
                reply = self.client.post(f"{self.url}/consensus", content=message,
                                         headers={"content-type": "application/octet-stream"})
                if reply.status_code >= 300:
                    self.failed += 1
                else:
                    self.sent += 1
            except Exception:  # a dead or slow peer: the message is lost, PBFT tolerates it
                self.failed += 1


class PbftNetworkHost:
    """One replica behind HTTP. ``start()`` the threads, ``deliver`` incoming bytes, ``propose`` payloads."""

    def __init__(self, replica: PbftReplica, identity: Identity, peers: Mapping[str, str],
                 on_commit: Callable[[Committed], None], tick_s: float = TICK_S, max_outbox: int = MAX_OUTBOX) -> None:
        self.replica = replica
        self.lock = threading.RLock()
        self.on_commit = on_commit
        self.tick_s = tick_s
        self._epoch = time.monotonic()
        self._stopping = False
        self.changed = threading.Condition(self.lock)  # notified after every event
        trusted = [replica.validators[name] for name in peers]
        self.peers = {name: _Peer(name, url, SignedAuth(identity, trusted=trusted), max_outbox)
                      for name, url in peers.items() if name != replica.name}
        self._threads = [threading.Thread(target=p.run, args=(self._is_stopping,), name=f"pbft-send-{p.name}",
                                          daemon=True) for p in self.peers.values()]
        self._threads.append(threading.Thread(target=self._ticker, name="pbft-tick", daemon=True))
        self._threads.append(threading.Thread(target=self._receiver, name="pbft-receive", daemon=True))
        self.inbox: deque[tuple[str, bytes]] = deque(maxlen=max_outbox * max(1, len(self.peers)))
        self._inbox_cond = threading.Condition()
        self.inbox_dropped = 0

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        self.ask_peers()

    def stop(self) -> None:
        self._stopping = True
        for peer in self.peers.values():
            with peer.cond:
                peer.cond.notify_all()
        with self._inbox_cond:
            self._inbox_cond.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=2.0)
        for peer in self.peers.values():
            peer.client.close()

    def _is_stopping(self) -> bool:
        return self._stopping

    def now(self) -> float:
        return time.monotonic() - self._epoch

    def enqueue(self, sender: str, message: bytes) -> None:
        """Take a message off the network without waiting for it to be handled (validation re-executes)."""
        with self._inbox_cond:
            if len(self.inbox) == self.inbox.maxlen:
                self.inbox_dropped += 1
            self.inbox.append((sender, message))
            self._inbox_cond.notify()

    def _receiver(self) -> None:
        while True:
            with self._inbox_cond:
                while not self.inbox and not self._stopping:
                    self._inbox_cond.wait(0.5)
                if self._stopping:
                    return
                sender, message = self.inbox.popleft()
            self.deliver(sender, message)

    def _ticker(self) -> None:
        while not self._stopping:
            time.sleep(self.tick_s)
            self.handle(Tick(self.now()))

    # --- events in, actions out -------------------------------------------------------------------
    def handle(self, event: Event) -> None:
        with self.lock:
            actions: list[Action] = []
            if not isinstance(event, Tick):
                actions += self.replica.handle(Tick(self.now()))
            actions += self.replica.handle(event)
            self._dispatch(actions)
            self.changed.notify_all()

    def deliver(self, sender: str, message: bytes) -> None:
        self.handle(Deliver(sender, message))

    def propose(self, payload: bytes) -> None:
        self.handle(Propose(payload))

    def force_view_change(self, from_view: int) -> bool:
        """Vote the primary of ``from_view`` out (the host saw a published task go unsealed for too long).

        The replica only accuses a primary that owes it a proposal it knows of; a task that never reached
        a pre-prepare (the primary died while running the round) is known only to the host."""
        with self.lock:
            self._dispatch(self.replica.handle(Tick(self.now())))
            accused = self.replica.suspect_primary(from_view)
            self._dispatch(accused)
            self.changed.notify_all()
            return bool(accused)

    def ask_peers(self) -> None:
        """Broadcast this replica's STATUS (at start: a restarted replica learns what it missed)."""
        with self.lock:
            self._dispatch(self.replica.ask_peers())

    def _dispatch(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                targets = self.peers.values() if action.to is None else [self.peers[action.to]] \
                    if action.to in self.peers else []
                for peer in targets:
                    peer.put(action.message)
            elif isinstance(action, Committed):
                self.on_commit(action)
            # SetTimer: the ticker thread ticks every tick_s, which meets every deadline

    # --- what the host may read -------------------------------------------------------------------
    def snapshot(self) -> dict[str, object]:
        with self.lock:
            r = self.replica
            return {"name": r.name, "view": r.view, "active": r.active, "primary": r.primary, "executed": r.executed,
                    "stats": r.stats.as_dict(),
                    "refused": [{"height": h, "digest": d, "reason": why} for h, d, why in list(r.invalid_log)[-8:]],
                    "peers": {p.name: {"sent": p.sent, "failed": p.failed, "dropped": p.dropped,
                                       "queued": len(p.outbox)} for p in self.peers.values()}}
