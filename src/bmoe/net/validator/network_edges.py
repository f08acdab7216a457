"""``NetworkEdges``: the round's :class:`~bmoe.protocol.edges.EdgeGateway` over HTTP, for a validator process.

Owns the validator's side of steps 2 and 5 in a deployment. ``results(work)`` / ``updates(work)``
publish a work item (:mod:`bmoe.net.work_wire`) that edge processes fetch with ``GET /work``, then
collect the signed transaction each expected edge posts to ``POST /txs`` (:meth:`offer`), and
return when every expected edge answered or ``timeout`` seconds after publishing. An edge that did
not answer is simply absent: the round records it as withheld (failures are data). An edge the
validator excluded (:meth:`exclude`: it declared numerics the run cannot accept) is not waited for:
it is left out of every work item, so the round records it absent, until :meth:`include`.

Failure stays a value, and costs at most its timeout once: an expected edge that has not read the item
``fetch_grace`` seconds after it was published is computing nothing, so it is not waited for (a live edge holds a
poll open, or polls again as soon as it answered); an edge that did not answer an item (never read it, or read it
and did not answer within the timeout) is presumed gone and left out of the items that follow, recorded absent as
above, until it polls again (:meth:`polled`).

The hot path (issue 24): an edge polls with ``frames=1`` and :meth:`frame` answers with the item and the objects
it computes on that it is not known to hold (the task and activation, or, with ``routed_rows``, just the rows
routed to its experts; its output gradients; weights it lacks), in one binary frame (:mod:`bmoe.net.frames`); its
answer carries the committed objects the item asks it to carry (``carry``: every result, one copy of each
updated expert), put into the store, which writes them behind the round (``WriteBehindStore``).

Admission of an answer, in order (each refusal is an :class:`~bmoe.net.http.auth.Refusal`, never an
exception): the transaction's signature; its sender is the HTTP sender and an edge of the genesis;
a work item is open and the answer names it; the edge is expected and has not answered yet; the
kind fits the phase; and the ledger's own state machine accepts it, tried on a copy of the working
state. A transaction admitted here is therefore one ``LedgerNode.submit`` accepts, and a bad edge
cannot make a round fail. Edges commit first and upload on demand: the objects a commitment names need
not be stored yet. After the phase, ``uploads(task_id, phase, requests)`` publishes an upload request
(phase ``upload``) that the edges it names answer with ``null`` once they have put the objects into the
storage nodes; the round then records only answers whose objects arrived (``protocol/round.py``).

Determinism: the returned transactions are in the order of ``work.assignments`` (the genesis's
order of edges), whatever order they arrived in, so the block is the one an in-process run seals.
Nonces in each work item come from the working state (for step 2 that is the sealed state, which
:meth:`resync` also records; for step 5 it includes the commitments of step 2). Only edges that
committed in step 2 are expected in step 5: an edge without a forward pass has nothing to update,
exactly as :class:`~bmoe.edge.worker.EdgeWorker.update` returns nothing in-process; an escalated update
(a dispute) expects every edge it names, which computes the forward pass it lacks. A dispute's result
escalation is more work of the same round: it adds to the round's measurements.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.state import LedgerState, apply_transaction
from bmoe.ledger.transactions import Transaction, check_transaction_signature
from bmoe.moe.payloads import PayloadError, decode_task_for_edge, encode_routed_rows
from bmoe.net.http.auth import Refusal
from bmoe.net.http.stats import Counters
from bmoe.net.work_wire import (
    PHASE_RESULT,
    PHASE_UPDATE,
    PHASE_UPLOAD,
    TX_KIND,
    idle_json,
    result_work_json,
    update_work_json,
    upload_work_json,
)
from bmoe.protocol.edges import ResultWork, UpdateWork
from bmoe.protocol.validator import committed_cids
from bmoe.storage import BlobStore, StorageError
from bmoe.storage.cid import cid_of

LedgerView = Callable[[], LedgerState]
FETCH_GRACE_S = 5.0  # an expected edge that has not read its item by then is not waited for (a live one polls)
HELD_PER_EDGE = 64  # weights remembered per edge as held (an edge's runtime keeps its recent ones by CID)
EXCHANGES_KEPT = 1000


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile of ``values`` (nearest rank; 0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def spread_carriers(expected: list[str], assignments: Mapping[str, list[int]], experts: list[int]) -> dict[str,
                                                                                                        list[int]]:
    """Edge -> the experts whose committed objects its answer carries: of each expert's assigned edges that are
    expected, the (i mod n)-th for the i-th expert, so one copy of each object travels and the load is spread."""
    carry: dict[str, list[int]] = {}
    for i, expert in enumerate(experts):
        holders = [address for address in expected if expert in assignments.get(address, [])]
        if holders:
            carry.setdefault(holders[i % len(holders)], []).append(expert)
    return carry


@dataclass
class _Phase:
    """One published work item and what has come back for it."""

    work_id: int
    phase: str
    task_id: str
    body: dict[str, Any]
    expected: list[str]  # assignment order
    trial: LedgerState | None  # the working state plus every admitted answer (None: an upload request)
    started: float
    push: dict[str, list[str]] = field(default_factory=dict)  # edge -> the CIDs its frame carries to it
    routed: dict[str, list[int]] = field(default_factory=dict)  # edge -> experts whose routed rows its frame carries
    carry: dict[str, list[int]] = field(default_factory=dict)  # edge -> experts whose objects its answer carries
    fetched: set[str] = field(default_factory=set)  # edges that have read this item
    answers: dict[str, Transaction | None] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)  # seconds each edge says it computed
    last_answer: float = 0.0
    open: bool = True


class NetworkEdges:
    """Edges as remote processes: publish work, collect their signed answers until ``timeout``."""

    def __init__(self, store: BlobStore, timeout: float, counters: Counters | None = None,
                 clock: Callable[[], float] = time.monotonic, fetch_grace: float = FETCH_GRACE_S,
                 routed_rows: bool = False) -> None:
        """``routed_rows`` (a classifier's deployment with one validator): push each edge the rows routed to its
        experts (each sample once) instead of the whole task (those rows are not checked against a CID on the
        ledger, so a deployment whose edges must not trust their validator, PBFT, pushes the task itself)."""
        if timeout <= 0:
            raise ValueError(f"edge timeout must be positive, got {timeout}")
        if fetch_grace <= 0:
            raise ValueError(f"the fetch grace must be positive, got {fetch_grace}")
        self.fetch_grace = min(fetch_grace, timeout)
        self.routed_rows = routed_rows
        self.on_publish: Callable[[], None] | None = None  # told each time a work item is published
        self._ephemeral: dict[str, bytes] = {}  # this round's routed rows by CID: pushed, never stored
        self._task_rows: tuple[torch.Tensor, dict[int, torch.Tensor]] | None = None  # this round's (x, groups)
        self._routed_cids: dict[str, str] = {}  # edge -> the CID of the routed rows encoded for it this round
        self.store = store  # the storage nodes the edges upload to (the round reads them through the Session's)
        self.timeout = timeout
        self.counters = counters if counters is not None else Counters()
        self.clock = clock
        self.sealed_nonces: dict[str, int] = {}
        self._view: LedgerView | None = None
        self._edges: frozenset[str] = frozenset()
        self._cond = threading.Condition()
        self._phase: _Phase | None = None
        self._work_id = time.time_ns() // 1_000_000  # never reused by a restarted validator
        self._committed: set[str] = set()
        self._excluded: dict[str, str] = {}  # edge address -> why it is left out of work items
        self._busy = 0.0
        self._compute = 0.0
        self._compute_total = 0.0
        self._held: dict[str, OrderedDict[str, None]] = {}  # edge -> weights it holds (it computed or was sent)
        self._gone: set[str] = set()  # edges that did not answer their last item: left out until they poll again
        # (phase, task id, seconds from publishing the item to its last answer), the most recent ones:
        self._exchanges: deque[tuple[str, str, float]] = deque(maxlen=EXCHANGES_KEPT)

    def bind(self, view: LedgerView) -> None:
        """Read the working ledger state through ``view`` (``session.node.pending_view``)."""
        self._view = view
        self._edges = frozenset(view().edges)

    # --- EdgeGateway ---------------------------------------------------------------------------
    def results(self, work: ResultWork) -> list[Transaction]:
        if not work.escalation:  # a new round; a dispute's escalation adds to the round's
            self._ephemeral, self._routed_cids, self._task_rows = {}, {}, None
            self._busy = 0.0
            self._compute = 0.0
            self._compute_total = 0.0
            self._committed = set()
        inputs = [work.task_cid, work.activation_cid]
        routed = self._routing(work) if self.routed_rows and not work.escalation else {}
        answers = self._run(PHASE_RESULT, work.task_id, list(work.assignments),
                            lambda wid, expected, nonces: result_work_json(wid, work, expected, nonces),
                            pushes=lambda address: ([] if address in routed else inputs)
                            + self._weights_missing(address, work.assignments[address], work.expert_cids),
                            carries=lambda expected: {a: list(work.assignments[a]) for a in expected}, routed=routed)
        self._committed |= {address for address, tx in answers.items() if tx is not None}
        return [tx for address in work.assignments if (tx := answers.get(address)) is not None]

    def updates(self, work: UpdateWork) -> list[Transaction]:
        expected = [address for address, experts in work.assignments.items()
                    if (address in self._committed or work.escalation)
                    and any(e in work.gradient_cids for e in experts)]
        if not expected:
            return []
        inputs = [work.task_cid, work.activation_cid] if work.escalation else []

        def pushes(address: str) -> list[str]:
            mine = [work.gradient_cids[e] for e in work.assignments[address] if e in work.gradient_cids]
            return mine + inputs + self._weights_missing(address, work.assignments[address], work.expert_cids)

        answers = self._run(PHASE_UPDATE, work.task_id, expected,
                            lambda wid, exp, nonces: update_work_json(wid, work, exp, nonces), pushes=pushes,
                            carries=lambda exp: spread_carriers(exp, work.assignments, sorted(work.gradient_cids)))
        for address, tx in answers.items():
            if tx is not None:
                self._hold(address, committed_cids(tx))  # the edge keeps the weights it computed
        return [tx for address in work.assignments if (tx := answers.get(address)) is not None]

    def uploads(self, task_id: str, phase: str, requests: Mapping[str, list[str]]) -> None:
        """Ask the edges of ``requests`` to upload those objects; returns when each answered or at the timeout."""
        expected = [address for address, cids in requests.items() if cids and address in self._edges]
        if expected:
            self._run(PHASE_UPLOAD, task_id, expected,
                      lambda wid, exp, _: upload_work_json(wid, task_id, phase, requests, exp), trial=False)

    def busiest_seconds(self) -> float:
        """The busiest edge's compute seconds, as the edges reported them, summed over steps 2 and 5
        (edges work in parallel); the rest of those steps' wall time is transfer (see ``exchange_seconds``)."""
        return self._compute

    def total_seconds(self) -> float:
        """Every edge's reported compute seconds, summed over edges and over steps 2 and 5."""
        return self._compute_total

    def exchange_seconds(self) -> float:
        """Wall time from publishing each work item of the round to its last answer, summed over steps 2 and 5
        and their upload requests."""
        return self._busy

    def resync(self, state: LedgerState) -> None:
        self.sealed_nonces = dict(state.nonces)

    def exclude(self, address: str, reason: str) -> bool:
        """Leave edge ``address`` out of the work items published from now on; True if it was not already."""
        with self._cond:
            new = address not in self._excluded
            self._excluded[address] = reason
            return new

    def include(self, address: str) -> bool:
        """Expect edge ``address`` in work items again; True if it was excluded."""
        with self._cond:
            return self._excluded.pop(address, None) is not None

    def excluded(self) -> dict[str, str]:
        """The excluded edges: address -> the reason."""
        with self._cond:
            return dict(self._excluded)

    # --- publishing and collecting ---------------------------------------------------------------
    def _routing(self, work: ResultWork) -> dict[str, list[int]]:
        """Edge -> its experts, for the edges whose experts are all activated: each is pushed the rows routed to them,
        each row once (encoded when it reads its item, :meth:`_routed_rows`, so that encoding and hashing one edge's
        rows overlaps with the others computing); the others are pushed the task and the activation."""
        try:
            x, groups = decode_task_for_edge(self.store.get(work.task_cid), self.store.get(work.activation_cid),
                                             len(work.expert_cids))
        except (StorageError, PayloadError):
            return {}
        self._task_rows = (x, groups)
        routed: dict[str, list[int]] = {}
        for address, experts in work.assignments.items():
            if experts and all(e in groups for e in experts):
                routed[address] = list(experts)
        return routed

    def _routed_rows(self, address: str, experts: list[int]) -> str | None:
        """The CID of the rows of ``experts`` routed to edge ``address`` this round, encoded once and kept in memory
        (never written: they are not an object of the ledger); None when the round has no task rows."""
        cid = self._routed_cids.get(address)
        if cid is None and self._task_rows is not None:
            x, groups = self._task_rows
            data = encode_routed_rows(x, groups, experts)
            cid = cid_of(data)
            self._ephemeral[cid] = data
            self._routed_cids[address] = cid
        return cid

    def _weights_missing(self, address: str, experts: list[int], expert_cids: list[str]) -> list[str]:
        """The current weights of ``experts`` that edge ``address`` is not known to hold."""
        held = self._held.get(address, OrderedDict())
        return [expert_cids[e] for e in experts if expert_cids[e] not in held]

    def _hold(self, address: str, cids: list[str]) -> None:
        held = self._held.setdefault(address, OrderedDict())
        for cid in cids:
            held[cid] = None
            held.move_to_end(cid)
        while len(held) > HELD_PER_EDGE:
            held.popitem(last=False)

    def _run(self, phase: str, task_id: str, expected: list[str],
             body: Callable[[int, list[str], dict[str, int]], dict[str, Any]],
             trial: bool = True, pushes: Callable[[str], list[str]] | None = None,
             carries: Callable[[list[str]], dict[str, list[int]]] | None = None,
             routed: Mapping[str, list[int]] | None = None) -> dict[str, Transaction | None]:
        if self._view is None:
            raise RuntimeError("NetworkEdges.bind(view) must be called before a round")
        working = copy.deepcopy(self._view()) if trial else None
        with self._cond:
            expected = [address for address in expected if address not in self._excluded and address not in self._gone]
        nonces = {address: working.next_nonce(address) for address in expected} if working else {}
        push = {address: self._pushable(pushes(address)) for address in expected} if pushes else {}
        carry = carries(expected) if carries else {}
        with self._cond:
            self._work_id += 1
            started = self.clock()
            self._phase = _Phase(self._work_id, phase, task_id, body(self._work_id, expected, nonces), expected,
                                 working, started, push, {a: list(routed[a]) for a in expected if a in (routed or {})},
                                 carry, last_answer=started)
            self.counters.add(f"work.{phase}")
            if self.on_publish is not None:
                self.on_publish()  # wake the edges' polls now
            deadline, grace_end = started + self.timeout, started + self.fetch_grace
            current = self._phase
            try:
                while len(current.answers) < len(expected):
                    now = self.clock()
                    if now >= deadline:
                        break
                    waiting = [address for address in expected if address not in current.answers]
                    if now >= grace_end and not current.fetched.intersection(waiting):
                        break  # the edges still waited for never read the item: nothing is being computed
                    self._cond.wait(timeout=(deadline if now >= grace_end else grace_end) - now)
            finally:
                current.open = False
            missing = len(expected) - len(current.answers)
            if missing:
                self.counters.add("work.timed_out_edges", missing)
            # Never read the item, or read it and did not answer within the timeout: presumed dead until it polls
            # again (a live edge polls again as soon as it has answered).
            gone = {address for address in expected if address not in current.answers}
            if gone:
                self._gone |= gone
                self.counters.add("work.gone_edges", len(gone))
            self._busy += current.last_answer - current.started
            self._exchanges.append((phase, task_id, current.last_answer - current.started))
            self._compute += max(current.compute.values(), default=0.0)
            self._compute_total += sum(current.compute.values())
            return dict(current.answers)

    def _pushable(self, cids: list[str]) -> list[str]:
        """Those of ``cids`` this validator can read now (from memory, or fetched once here for every edge); an
        edge reads any other from the storage nodes itself."""
        readable = []
        for cid in dict.fromkeys(cids):
            try:
                self._read(cid)
            except StorageError:
                continue
            readable.append(cid)
        return readable

    def _read(self, cid: str) -> bytes:
        data = self._ephemeral.get(cid)
        return data if data is not None else self.store.get(cid)

    def frame(self, address: str) -> tuple[dict[str, Any], dict[str, bytes]]:
        """What ``GET /work`` pushes to edge ``address``: the open work item, the experts whose objects its answer
        carries, and the objects it computes on that it is not known to hold (:mod:`bmoe.net.frames`)."""
        with self._cond:
            phase = self._phase
            if phase is None or not phase.open or address not in phase.expected:
                return self.current(), {}
            phase.fetched.add(address)
            header = {**phase.body, "carry": phase.carry.get(address, [])}
            cids = list(phase.push.get(address, []))
            experts = phase.routed.get(address)
        if experts is not None and (rows := self._routed_rows(address, experts)) is not None:
            cids.insert(0, rows)
            header["routed"] = rows
        objects = {}
        for cid in cids:
            try:
                objects[cid] = self._read(cid)
            except StorageError:
                continue
        self._hold(address, [cid for cid in cids if cid in objects])
        if objects:
            self.counters.add("work.pushed", len(objects))
        return header, objects

    def current(self, address: str | None = None) -> dict[str, Any]:
        """The work item edges see on ``GET /work`` (``address``: the edge reading it, which counts as fetched)."""
        with self._cond:
            phase = self._phase
            if phase is None or not phase.open:
                return idle_json(phase.work_id if phase else self._work_id)
            if address in phase.expected:
                phase.fetched.add(address)
            return dict(phase.body)

    def exchange_percentiles(self, key: Callable[[str, str], str] = lambda phase, task_id: phase) -> dict[
            str, dict[str, float]]:
        """Per ``key(phase, task id)`` (the phase by default), the seconds from publishing a work item to its last
        answer over the recent items: how many, the median and the 99th percentile (a language model's forward
        task: one layer's round trip)."""
        with self._cond:
            kept = list(self._exchanges)
        by_phase: dict[str, list[float]] = {}
        for phase, task_id, seconds in kept:
            by_phase.setdefault(key(phase, task_id), []).append(seconds)
        return {phase: {"n": len(values), "p50": percentile(values, 0.50), "p99": percentile(values, 0.99)}
                for phase, values in sorted(by_phase.items())}

    def polled(self, address: str) -> None:
        """Edge ``address`` asked for work: if it was presumed gone, it is expected again from the next item."""
        with self._cond:
            self._gone.discard(address)

    def gone(self) -> list[str]:
        """The edges presumed gone: they did not answer their last work item (did not read it within the fetch
        grace, or read it and did not answer within the timeout) and have not polled since."""
        with self._cond:
            return sorted(self._gone)

    @property
    def work_id(self) -> int:
        return self._work_id

    # --- admission -------------------------------------------------------------------------------
    def offer(self, sender: str, work_id: int, tx: Transaction | None, compute_s: float = 0.0,
              objects: Mapping[str, bytes] | None = None) -> Refusal | None:
        """Admit ``sender``'s answer to work item ``work_id``, or say why not (nothing changes then).

        ``compute_s``: the seconds the edge says it computed, kept for the latency split only. ``objects``: bytes
        the answer carries (checked against their CIDs already, :func:`bmoe.net.frames.decode_frame`); each must be
        one the transaction commits. Once the answer is admitted they are put into the store (written behind)."""
        refusal = self._check_sender(sender, tx)
        if refusal is None and objects:
            committed = set(committed_cids(tx)) if tx is not None else set()
            stray = [cid for cid in objects if cid not in committed]
            if stray:
                refusal = Refusal(400, "uncommitted_object", f"the answer carries {stray[0]}, which its transaction "
                                                             "does not commit")
        if refusal is not None:
            return refusal
        with self._cond:
            refusal = self._check_phase(sender, work_id, tx)
            phase = self._phase
            if refusal is None and phase is not None and phase.trial is not None and tx is not None:
                try:
                    apply_transaction(phase.trial, tx)  # all guards run before any change
                except InvalidTransaction as exc:
                    refusal = Refusal(400, "invalid_transaction", f"the ledger refuses it: {exc}")
            if refusal is not None:
                return refusal
            assert phase is not None
            for data in (objects or {}).values():
                self.store.put(data)
            if objects:
                self.counters.add("work.carried", len(objects))
            phase.answers[sender] = tx
            phase.compute[sender] = compute_s
            phase.last_answer = self.clock()
            self.counters.add("work.answers")
            self._cond.notify_all()
        return None

    def _check_sender(self, sender: str, tx: Transaction | None) -> Refusal | None:
        if tx is not None:
            try:
                check_transaction_signature(tx)
            except InvalidTransaction as exc:
                return Refusal(400, "bad_transaction_signature", f"transaction refused: {exc}")
            if tx.sender != sender:
                return Refusal(403, "sender_mismatch", "an edge posts its own transactions: the transaction's sender "
                                                       "is not the request's signer")
        if sender not in self._edges:
            return Refusal(403, "not_an_edge", f"{sender} is not an edge of this ledger")
        return None

    def _check_phase(self, sender: str, work_id: int, tx: Transaction | None) -> Refusal | None:
        phase = self._phase
        if phase is None or not phase.open:
            return Refusal(409, "no_open_work", "no work item is open")
        if work_id != phase.work_id:
            return Refusal(409, "stale_work", f"work item {work_id} is not the open one ({phase.work_id})")
        if sender not in phase.expected:
            return Refusal(403, "not_assigned", f"edge {sender[:16]}... is not expected to answer work {work_id}")
        if sender in phase.answers:
            return Refusal(409, "already_answered", f"edge {sender[:16]}... already answered work {work_id}")
        if tx is not None and phase.phase == PHASE_UPLOAD:
            return Refusal(400, "wrong_kind", f"work {work_id} is an upload request: it takes no transaction")
        if tx is not None and tx.kind != TX_KIND[phase.phase]:
            return Refusal(400, "wrong_kind", f"work {work_id} takes a {TX_KIND[phase.phase]}, not a {tx.kind}")
        return None
