"""Measurement of a round, as an observer: seconds per step, bytes each edge moves, sealing costs.

Owns what a round costs, never what it decides. ``run_round`` calls :class:`RoundObserver`'s hooks
as its steps go (``begin``, ``step``, ``work_out``, ``answer_in``, ``uploaded``, ``sealed``) and copies
the measured values into its ``RoundOutcome``; nothing measured here feeds back into a decision, so a
round's transactions, blocks and head hash do not depend on it. Must not know the round's rules,
the ledger's state or PyTorch: it sees work items, signed transactions, CIDs and seconds.

Bytes are counted where they move. An edge uploads its signed answer (the transaction's canonical
JSON) and, later, only the objects the validators ask it for (``uploaded``: commit first, upload on
demand). It downloads what its work names except what it already holds: the observer remembers, across
rounds, the CIDs each edge computed, uploaded or downloaded (an edge keeps experts by CID, and its own
updated weights, so an edge whose update was accepted does not download the expert next round).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bmoe.ledger.node import SealStats
from bmoe.ledger.transactions import Transaction, tx_signing_message
from bmoe.protocol.edges import ResultWork, UpdateWork
from bmoe.storage import BlobStore

STEPS = ("gate", "compute", "verify", "loss", "update", "storage", "consensus")
SIGNATURE_FIELD = len(',"signature":""')  # what the wire form adds to the signed message, besides the signature


def wire_size(tx: Transaction) -> int:
    """The bytes of ``tx``'s canonical JSON (``tx_to_dict``): the message its sender signed (kept with the
    transaction, so nothing is encoded again) with ``"signature"``, the last key in sorted order, added."""
    return len(tx_signing_message(tx)) + SIGNATURE_FIELD + len(tx.signature)


@dataclass
class RoundTimes:
    """Seconds spent per component of a round (measured, not modelled)."""

    gate: float = 0.0
    compute: float = 0.0
    verify: float = 0.0
    loss: float = 0.0
    update: float = 0.0
    storage: float = 0.0  # waiting, before the seal, for the objects written behind to be durable
    consensus: float = 0.0

    def total(self) -> float:
        return self.gate + self.compute + self.verify + self.loss + self.update + self.storage + self.consensus


@dataclass
class Traffic:
    """Bytes each edge downloads and uploads in a round (the input of the communication model)."""

    down: dict[str, int] = field(default_factory=dict)
    up: dict[str, int] = field(default_factory=dict)

    def add(self, edge: str, down: int = 0, up: int = 0) -> None:
        self.down[edge] = self.down.get(edge, 0) + down
        self.up[edge] = self.up.get(edge, 0) + up

    @property
    def total(self) -> int:
        return sum(self.down.values()) + sum(self.up.values())

    @property
    def max_edge(self) -> int:
        """The busiest edge's bytes: edges transfer in parallel, so it bounds the round."""
        edges = set(self.down) | set(self.up)
        return max((self.down.get(e, 0) + self.up.get(e, 0) for e in edges), default=0)


class RoundObserver:
    """Times a round's steps and counts the bytes its edges move (object sizes read from ``store``)."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._held: dict[str, set[str]] = {}  # edge -> CIDs it holds (computed, uploaded, downloaded), across rounds
        self.begin()

    def begin(self) -> None:
        """An attempt at the round starts: everything measured so far is dropped (a rejected
        proposal's attempt is not part of the round that seals)."""
        self.times = RoundTimes()
        self.traffic = Traffic()
        self.edge_seconds = 0.0  # the busiest edge's measured compute time (edges work in parallel)
        self.edge_total_seconds = 0.0  # every edge's measured compute time, summed: what a deployment pays
        self.mine_seconds = 0.0  # the part of the consensus time spent on proof of work
        self.block_bytes = 0
        self._sizes: dict[str, int] = {}
        self._clock = time.perf_counter()

    def step(self, part: str) -> None:
        """Step ``part`` (one of :data:`STEPS`) ended: the time since the last one is its."""
        assert part in STEPS, part
        now = time.perf_counter()
        setattr(self.times, part, getattr(self.times, part) + now - self._clock)
        self._clock = now

    def work_out(self, work: ResultWork | UpdateWork) -> None:
        """Work handed to the edges: each assigned edge downloads what it names and does not hold."""
        if isinstance(work, ResultWork) and not work.escalation:  # a new task: experts of other CIDs are stale
            current = set(work.expert_cids)
            for held in self._held.values():
                held &= current
        for address, experts in work.assignments.items():
            if isinstance(work, ResultWork):
                cids = [work.task_cid, work.activation_cid, *(work.expert_cids[e] for e in experts)]
            else:
                cids = [work.gradient_cids[e] for e in experts if e in work.gradient_cids]
                if work.escalation:  # an escalated update runs its forward pass first
                    cids += [work.task_cid, work.activation_cid, *(work.expert_cids[e] for e in experts)]
            held = self._held.setdefault(address, set())
            fetched = [cid for cid in dict.fromkeys(cids) if cid not in held]
            held.update(fetched)
            self.traffic.add(address, down=sum(self._size(cid) for cid in fetched))

    def answer_in(self, tx: Transaction) -> None:
        """An edge's signed answer: it uploads the transaction and holds every object it names."""
        entries = tx.payload["results" if tx.kind == "commitment" else "updates"]
        self._held.setdefault(tx.sender, set()).update(str(entry["cid"]) for entry in entries)
        self.traffic.add(tx.sender, up=wire_size(tx))

    def uploaded(self, edge: str, cids: list[str]) -> None:
        """``edge`` uploaded the objects of ``cids``, asked for by the validators."""
        self._held.setdefault(edge, set()).update(cids)
        self.traffic.add(edge, up=sum(self._size(cid) for cid in cids))

    def sealed(self, seal: SealStats | None, edge_seconds: float, edge_total_seconds: float = 0.0) -> None:
        """The block is sealed (``seal`` None when blocks are not persisted); the busiest edge's compute
        time and the sum over edges."""
        self.edge_seconds = edge_seconds
        self.edge_total_seconds = edge_total_seconds
        self.mine_seconds = seal.mine_seconds if seal else 0.0
        self.block_bytes = seal.block_bytes if seal else 0

    def _size(self, cid: str) -> int:
        """Object sizes by CID, read once per round."""
        if cid not in self._sizes:
            self._sizes[cid] = self.store.size(cid)
        return self._sizes[cid]
