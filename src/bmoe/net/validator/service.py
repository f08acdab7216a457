"""The validator process: a Starlette app around one ``Session`` whose edges are :class:`NetworkEdges`.

Owns the validator's routes, its task queue and the worker thread that runs rounds one at a time
through ``Session.run_published`` (the same round code as the in-process simulation; nothing of the
round is re-implemented here). Authentication is :mod:`bmoe.net.http.guard`'s job: every route but
``/health`` needs a signed request from an enrolled key, and every reply is signed.

=========================  =====================================================================
``POST /tasks``            body = the publisher's signed ``task`` transaction (``tx_to_dict``);
                           checked (signature, sender, unique id, the ledger's task rule with the
                           next nonce, data stored) and queued: 202 ``{"task_id", "status",
                           "position"}``
``GET /tasks/{task_id}``   ``{"status": queued | running | sealed | done | failed, ...}``; a
                           sealed task adds ``height``, ``block_hash``, ``head_hash``,
                           ``output_cid``, ``loss``, ``accepted``, ``rejected``, ``misbehaviour``
                           (from its block) and, while this process remembers it, ``times``
                           (seconds per step); ``done``: the same from a traditional server,
                           which keeps no ledger (no height, no block)
``GET /work``              the open work item for edges (:mod:`bmoe.net.work_wire`);
                           ``?after=ID&wait=S`` waits up to S seconds (at most 10) for a newer one;
                           ``&profile=NAME&numerics=...`` declares what the edge computes under
``POST /txs``              an edge's answer ``{"work_id", "transaction"}`` (see NetworkEdges);
                           ``?next=1`` with ``GET /work``'s query: once admitted, the reply is
                           the edge's next work item, as ``GET /work?after=WORK_ID`` sends it
                           (one exchange per phase instead of two)
``GET /head``              the sealed state: height, head hash, task counts, gate and expert CIDs,
                           nonces, edges' records
``GET /health``            unauthenticated: ``{"status": "ok", "name", "address", "url", "height",
                           "head_hash"}``
``GET /stats``             counters (refusals per reason, work items, answers, timeouts), the
                           queue, when each edge last polled, each edge's declared profile, the
                           edges excluded for their declaration (``excluded_edges``: name -> why),
                           and ``quorum``: tasks in a row without quorum and whether that is a
                           stall (:mod:`bmoe.protocol.quorum_watch`; a sealed task's status
                           carries it too)
=========================  =====================================================================

Refusals are JSON ``{"error", "reason"}``, counted as ``errors.<reason>``: 400 ``malformed_json`` /
``malformed_transaction`` / ``bad_transaction_signature`` / ``wrong_kind`` / ``invalid_transaction``
/ ``missing_object`` / ``bad_task_data`` (not finite, or not what the task declares) /
``json_too_deep`` / ``digest_mismatch`` / ``bad_query``, 403 ``sender_mismatch`` /
``not_publisher`` / ``not_an_edge`` / ``not_assigned``, 404 ``unknown_task`` / ``no_route``, 409
``duplicate_task`` / ``no_open_work`` / ``stale_work`` / ``already_answered``, 503 ``busy``.

An honest edge whose declared profile computes otherwise than the run configures it, under a comparison
that needs equal bytes (:func:`bmoe.net.fleet_check.misdeclared`), is excluded: left out of work items
(the round records it absent), counted as ``edges.excluded``, named in ``/stats``; the fleet goes on.
Its next declaration that fits includes it again (``edges.included``).

A task that fails (the publisher's data cannot be decoded, say) is marked ``failed`` with a
one-line error; the pending block is discarded and every signer resynchronised from the sealed
state, so the validator keeps serving. The chain lives in the Session's run directory (SQLite,
each block persisted before it is adopted): ``kill -9`` loses only the round in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from bmoe.ledger.blocks import block_to_bytes
from bmoe.ledger.errors import InvalidTransaction
from bmoe.ledger.keys import Identity
from bmoe.ledger.state import apply_transaction, begin_block
from bmoe.ledger.transactions import Transaction, check_transaction_signature, tx_from_dict
from bmoe.moe.payloads import PayloadError, check_task_fits, decode_task
from bmoe.net.fleet_check import misdeclared
from bmoe.net.frames import FrameError, decode_frame, is_frame
from bmoe.net.http.auth import DEFAULT_MAX_BODY, DEFAULT_WINDOW_S, Refusal
from bmoe.net.http.error_handlers import error_handlers
from bmoe.net.http.frame_response import FrameResponse
from bmoe.net.http.guard import SignedRequestGuard
from bmoe.net.http.json_body import read_json
from bmoe.net.http.stats import Counters
from bmoe.net.validator.network_edges import NetworkEdges
from bmoe.net.validator.task_records import TaskIndex
from bmoe.net.work_wire import WireError, read_answer, read_declaration
from bmoe.protocol.round import RoundOutcome
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from bmoe.storage import BlobStore, StorageError

DEFAULT_VALIDATOR_MAX_BODY = DEFAULT_MAX_BODY  # answers carry the objects they commit (an expert's weights)
MAX_WAIT_S = 10.0
POLL_S = 0.5  # a waiting poll also looks again this often (it is woken when an item is published)


@dataclass(frozen=True)
class ValidatorSettings:
    identity: Identity
    enrolled: Mapping[str, str]  # name -> address: publisher, edges, validators (and whoever may read)
    url: str
    max_body: int = DEFAULT_VALIDATOR_MAX_BODY
    window: float = DEFAULT_WINDOW_S
    max_queue: int = 1000


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _times(outcome: RoundOutcome, wall: float) -> dict[str, float]:
    return {**dataclasses.asdict(outcome.times), "mine": outcome.mine_seconds, "edges": outcome.edge_seconds,
            "edges_total": outcome.edge_total_seconds, "bytes": float(outcome.traffic.total), "round": wall}


class ValidatorService:
    """One validator: its Session, the queue of published tasks, the round worker and the routes."""

    def __init__(self, session: Session, edges: NetworkEdges, admission_store: BlobStore,
                 settings: ValidatorSettings, counters: Counters) -> None:
        if session.node.chain is None and session.node.seals:
            raise ValueError("a validator needs a run directory (its chain)")
        self.session = session
        self.edges = edges
        self._published = asyncio.Event()  # replaced by the serving loop's own at start-up
        self.admission_store = admission_store  # its own client: checks run beside the round's thread
        self.settings = settings
        self.counters = counters
        self.index = TaskIndex(session.node.chain)
        self.names = {address: name for name, address in settings.enrolled.items()}
        self._queue: deque[Transaction] = deque()
        self._status: dict[str, dict[str, Any]] = {}
        self._active_nonces: dict[str, int] = {}  # task id -> publisher nonce, queued or running
        self._seen: dict[str, float] = {}
        self._declared: dict[str, tuple[str, str]] = {}  # edge address -> (profile, numerics) from its polls
        self._edge_index = {address: i for i, address in enumerate(session.node.view().edges)}
        self._cond = threading.Condition()
        self._stopping = False
        self._head = self._sealed_head()
        self._quorum = session.quorum.to_dict()  # its watch after the last task (protocol/quorum_watch.py)
        self._worker = threading.Thread(target=self._run_tasks, name="rounds", daemon=True)

    # --- the round worker --------------------------------------------------------------------------
    def start(self) -> None:
        self._worker.start()

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._worker.join(timeout=timeout)
        if not self._worker.is_alive():
            self.session.close()

    def _run_tasks(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                tasks = self._take()
                for task in tasks:
                    task_id = str(task.payload["task_id"])
                    self._status[task_id] = {"task_id": task_id, "status": "running"}
            self._run(tasks)

    def _take(self) -> list[Transaction]:
        """The tasks the worker runs next, taken from the queue (the lock held; the queue is not empty): one."""
        return [self._queue.popleft()]

    def _run(self, tasks: list[Transaction]) -> None:
        self._run_one(str(tasks[0].payload["task_id"]), tasks[0])

    def _run_one(self, task_id: str, task: Transaction) -> None:
        node = self.session.node
        height = node.view().height
        started = time.perf_counter()
        try:
            outcome = self.session.run_published(task)
        except Exception as exc:  # a task that cannot run is a failed task, never a dead validator
            sealed = node.view().height > height
            if not sealed:
                node.discard_pending()
                self.session.participants.resync_nonces()
            self.counters.add("tasks.failed")
            status = {"task_id": task_id, "status": "failed", "error": _one_line(exc)}
            outcome = None
        else:
            done = "sealed" if node.seals else "done"
            self.counters.add(f"tasks.{done}")
            status = {"task_id": task_id, "status": done, "times": _times(outcome, time.perf_counter() - started),
                      "quorum": self.session.quorum.to_dict()}
            sealed = True
            if not node.seals:
                self.index.add_done(node.last_transactions)
        if sealed and node.chain is not None:
            head = node.chain.head()
            if head is not None:
                self.index.add(head)
        with self._cond:
            self._head = self._sealed_head()
            self._quorum = self.session.quorum.to_dict()
            self._status[task_id] = status
            self._active_nonces.pop(task_id, None)

    def _sealed_head(self) -> dict[str, Any]:
        node = self.session.node
        state = node.view()
        return {"height": state.height, "head_hash": node.head_hash, "task_count": state.task_count,
                "train_tasks": state.train_tasks, "gate_cid": state.gate_cid, "expert_cids": list(state.expert_cids),
                "nonces": dict(state.nonces),
                "edge_records": {address: record.to_dict() for address, record in state.edge_records.items()}}

    # --- wiring --------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/stats", self.stats, methods=["GET"]),
            Route("/head", self.head, methods=["GET"]),
            Route("/genesis", self.genesis, methods=["GET"]),
            Route("/tasks", self.post_task, methods=["POST"]),
            Route("/tasks/{task_id}", self.get_task, methods=["GET"]),
            Route("/work", self.work, methods=["GET"]),
            Route("/txs", self.post_txs, methods=["POST"]),
        ]

    def app(self) -> ASGIApp:
        routes = self.routes()
        handlers = error_handlers(lambda status, reason, message: self._refuse(Refusal(status, reason, message)),
                                  _one_line)
        app = Starlette(routes=routes, lifespan=self._lifespan, exception_handlers=handlers)
        return SignedRequestGuard(app, identity=self.settings.identity, enrolled=set(self.settings.enrolled.values()),
                                  counters=self.counters, max_body=self.settings.max_body,
                                  window=self.settings.window)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        self._published = asyncio.Event()
        self.edges.on_publish = lambda: loop.call_soon_threadsafe(self._work_published)
        self.start()
        yield
        self.edges.on_publish = None
        await run_in_threadpool(self.stop)

    def _work_published(self) -> None:
        """(The event loop) a work item was published: wake every edge's poll waiting for one."""
        published, self._published = self._published, asyncio.Event()
        published.set()

    def _refuse(self, refusal: Refusal) -> JSONResponse:
        self.counters.add(f"errors.{refusal.reason}")
        return JSONResponse(refusal.body(), status_code=refusal.status)

    async def _json(self, request: Request) -> object | Refusal:
        return read_json(await request.body())

    # --- routes ---------------------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        with self._cond:
            head = self._head
        return JSONResponse({"status": "ok", "name": self.names.get(self.settings.identity.address, "validator"),
                             "address": self.settings.identity.address, "url": self.settings.url,
                             "height": head["height"], "head_hash": head["head_hash"]})

    async def stats(self, request: Request) -> Response:
        now = time.monotonic()
        with self._cond:
            queued = len(self._queue)
            seen = {self.names.get(a, a): round(now - t, 3) for a, t in sorted(self._seen.items())}
            profiles = {self.names.get(a, a): profile for a, (profile, _) in sorted(self._declared.items())}
            quorum = self._quorum
        excluded = {self.names.get(a, a): why for a, why in sorted(self.edges.excluded().items())}
        gone = [self.names.get(a, a) for a in self.edges.gone()]
        return JSONResponse({"name": self.names.get(self.settings.identity.address, "validator"),
                             "url": self.settings.url, "queued": queued, "edge_timeout": self.edges.timeout,
                             "fetch_grace_s": self.edges.fetch_grace,
                             "edges_last_polled_s_ago": seen, "edge_profiles": profiles, "excluded_edges": excluded,
                             "gone_edges": gone, "exchange_s": self.edges.exchange_percentiles(self.exchange_key),
                             "quorum": quorum,
                             **self.counters.snapshot()})

    async def head(self, request: Request) -> Response:
        with self._cond:
            return JSONResponse(self._head)

    async def genesis(self, request: Request) -> Response:
        """Block 0's bytes, hex: what a PBFT peer that cannot sign validator-0's genesis starts from."""
        chain = self.session.node.chain
        if chain is None or chain.height() < 0:
            return self._refuse(Refusal(404, "no_genesis", "this validator keeps no chain"))
        return JSONResponse({"block": block_to_bytes(chain.block_at(0)).hex()})

    async def post_task(self, request: Request) -> Response:
        raw = await request.body()
        carried: dict[str, bytes] = {}
        if is_frame(raw):  # the task and its data, which this validator then makes durable before it seals
            try:
                header, carried = await run_in_threadpool(decode_frame, raw)
            except FrameError as exc:
                return self._refuse(Refusal(400, "malformed_frame", f"task refused: {exc}"))
            body: object = header.get("transaction")
        else:
            body = read_json(raw)
            if isinstance(body, Refusal):
                return self._refuse(body)
        try:
            tx = tx_from_dict(body)
            check_transaction_signature(tx)
        except InvalidTransaction as exc:
            reason = "bad_transaction_signature" if "bad signature" in str(exc) else "malformed_transaction"
            return self._refuse(Refusal(400, reason, f"transaction refused: {exc}"))
        refusal = self._admit_task(request.scope["bmoe.sender"], tx)
        if refusal is None and set(carried) - {tx.payload.get("data_cid")}:
            refusal = Refusal(400, "uncommitted_object", "a task carries its own data only")
        if refusal is None:
            refusal = await run_in_threadpool(self._check_task_data, tx, carried)
        if refusal is None:
            refusal, position = self._enqueue(tx, carried)
        if refusal is not None:
            return self._refuse(refusal)
        self.counters.add("tasks.queued")
        return JSONResponse({"task_id": tx.payload["task_id"], "status": "queued", "position": position},
                            status_code=202)

    def _admit_task(self, sender: str, tx: Transaction) -> Refusal | None:
        if tx.sender != sender:
            return Refusal(403, "sender_mismatch", "the transaction's sender is not the request's signer")
        if tx.kind != "task":
            return Refusal(400, "wrong_kind", f"POST /tasks takes a task transaction, not a {tx.kind}")
        state = self.session.node.view()
        if tx.sender != state.publisher:
            return Refusal(403, "not_publisher", "only the run's publisher submits tasks")
        task_id = tx.payload.get("task_id")
        with self._cond:
            known = isinstance(task_id, str) and (
                task_id in self.index or self._status.get(task_id, {}).get("status") in ("queued", "running"))
            expected = max([state.next_nonce(tx.sender), *(n + 1 for n in self._active_nonces.values())])
        if known:
            return Refusal(409, "duplicate_task", f"task {task_id!r} is already queued or sealed")
        trial = begin_block(state)
        trial.nonces[tx.sender] = expected - 1
        try:
            apply_transaction(trial, tx)  # the ledger's own task rule, with the nonce after the queue
        except InvalidTransaction as exc:
            return Refusal(400, "invalid_transaction", f"the ledger refuses it: {exc}")
        return None

    def exchange_key(self, phase: str, task_id: str) -> str:
        """What ``/stats``' exchange times are grouped by: the phase (step 2's results, step 5's updates...)."""
        return phase

    def run_config(self) -> RunConfig:
        """The protocol's settings the validator runs under."""
        return self.session.config

    def _judge_declaration(self, address: str, declared: tuple[str, str]) -> None:
        """Exclude edge ``address`` while its declaration cannot take part; include it again once it can."""
        index = self._edge_index.get(address)
        reason = None if index is None else misdeclared(self.run_config(), index, *declared)
        if reason is not None and self.edges.exclude(address, reason):
            self.counters.add("edges.excluded")
        elif reason is None and self.edges.include(address):
            self.counters.add("edges.included")

    def _task_data(self, cid: str, carried: Mapping[str, bytes]) -> bytes | Refusal:
        """The task's data: carried with it, else read from storage (StorageError when it cannot be)."""
        if cid in carried:
            return carried[cid]
        if not self.admission_store.has(cid):
            return Refusal(400, "missing_object", f"task data {cid} is not in storage")
        return self.admission_store.get(cid)

    def _check_task_data(self, tx: Transaction, carried: Mapping[str, bytes]) -> Refusal | None:
        """The task's data (``carried`` with it, or stored) must hold what the task says: finite samples (no NaN
        or inf, which would poison the gate and frame every honest edge), as many as it declares, labels for
        training. Refused here, before anything about the task is recorded."""
        cid = tx.payload["data_cid"]
        try:
            data = self._task_data(cid, carried)
            if isinstance(data, Refusal):
                return data
            x, y = decode_task(data)
            dataset = self.session.dataset
            check_task_fits(x, y, tuple(dataset.input_shape), dataset.num_classes)
        except (StorageError, ValueError) as exc:
            if isinstance(exc, PayloadError):
                return Refusal(400, "bad_task_data", f"task data {cid} refused: {exc}")
            return Refusal(400, "missing_object", f"task data {cid} cannot be checked: {exc}")
        train = tx.payload["kind"] == "train"
        if x.shape[0] != tx.payload["samples"] or (y is None) == train:
            return Refusal(400, "bad_task_data", f"task data {cid} holds {x.shape[0]} samples "
                           f"{'with' if y is not None else 'without'} labels; the task declares "
                           f"{tx.payload['samples']} {tx.payload['kind']} samples")
        return None

    def _enqueue(self, tx: Transaction, carried: Mapping[str, bytes]) -> tuple[Refusal | None, int]:
        """Queue an admitted task; its carried data goes into the store first (written behind, durable before the
        task's block is sealed)."""
        task_id = str(tx.payload["task_id"])
        with self._cond:
            if len(self._queue) >= self.settings.max_queue:
                return Refusal(503, "busy", f"{len(self._queue)} tasks are queued; retry later"), 0
            if task_id in self._active_nonces or task_id in self.index:
                return Refusal(409, "duplicate_task", f"task {task_id!r} is already queued or sealed"), 0
            for data in carried.values():
                self.admission_store.put(data)
            self._queue.append(tx)
            self._active_nonces[task_id] = tx.nonce
            self._status[task_id] = {"task_id": task_id, "status": "queued"}
            self._cond.notify_all()
            return None, len(self._queue)

    async def get_task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        with self._cond:
            status = dict(self._status.get(task_id, {}))
            head_hash = self._head["head_hash"]
        if status.get("status") in (None, "sealed", "done"):
            record = await run_in_threadpool(self.index.record, task_id)
            if record is not None:
                status = {**record, **status, "head_hash": head_hash}
        if not status:
            return self._refuse(Refusal(404, "unknown_task", f"no task {task_id!r} here"))
        return JSONResponse(status)

    async def work(self, request: Request) -> Response:
        try:
            after = int(request.query_params.get("after", "-1"))
            wait = min(float(request.query_params.get("wait", "0")), MAX_WAIT_S)
            declared = read_declaration(request.query_params)
        except ValueError as exc:  # WireError is one
            return self._refuse(Refusal(400, "bad_query", f"bad work query: {exc}"))
        return await self._next_work(request, after, wait, declared)

    async def _next_work(self, request: Request, after: int, wait: float, declared: tuple[str, str] | None) -> Response:
        """The work item newer than ``after`` for the request's edge, waiting up to ``wait`` seconds for one to be
        published (``GET /work``, and ``POST /txs?next=1`` once its answer is admitted)."""
        self.edges.polled(request.scope["bmoe.sender"])
        with self._cond:
            self._seen[request.scope["bmoe.sender"]] = time.monotonic()
            if declared is not None:
                self._declared[request.scope["bmoe.sender"]] = declared
        if declared is not None:
            self._judge_declaration(request.scope["bmoe.sender"], declared)
        deadline = time.monotonic() + max(0.0, wait)
        while self.edges.work_id <= after and (left := deadline - time.monotonic()) > 0:
            published = self._published  # set when the next item is published (the round's thread tells the loop)
            if self.edges.work_id > after:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(published.wait(), timeout=min(left, POLL_S))
        if request.query_params.get("frames") == "1":  # the work item and the objects it computes on, in one frame
            header, objects = await run_in_threadpool(self.edges.frame, request.scope["bmoe.sender"])
            return FrameResponse(header, objects)  # its head, then each object: never joined into one body
        return JSONResponse(self.edges.current(request.scope["bmoe.sender"]))

    async def post_txs(self, request: Request) -> Response:
        follow = request.query_params.get("next") == "1"  # the reply is the edge's next work item
        try:
            wait = min(float(request.query_params.get("wait", "0")), MAX_WAIT_S) if follow else 0.0
            declared = read_declaration(request.query_params) if follow else None
        except ValueError as exc:  # WireError is one
            return self._refuse(Refusal(400, "bad_query", f"bad work query: {exc}"))
        raw = await request.body()
        objects: dict[str, bytes] = {}
        if is_frame(raw):  # the answer and the objects it carries
            try:
                body, objects = await run_in_threadpool(decode_frame, raw)
            except FrameError as exc:
                return self._refuse(Refusal(400, "malformed_frame", f"answer refused: {exc}"))
        else:
            body = read_json(raw)
            if isinstance(body, Refusal):
                return self._refuse(body)
        try:
            answer = read_answer(body)
        except (WireError, InvalidTransaction) as exc:
            return self._refuse(Refusal(400, "malformed_transaction", f"answer refused: {exc}"))
        work_id = answer.work_id
        refusal = await run_in_threadpool(self.edges.offer, request.scope["bmoe.sender"], work_id, answer.transaction,
                                          answer.compute_s, objects)
        if refusal is not None:
            return self._refuse(refusal)
        if follow:
            self.counters.add("work.followed")
            return await self._next_work(request, work_id, wait, declared)
        return JSONResponse({"accepted": True, "work_id": work_id})
