"""A validator process under PBFT: one replica of n, hosted by :class:`~.pbft_transport.PbftNetworkHost`.

Owns what differs from the single PoW validator (:class:`ValidatorService`):

- ``POST /consensus``: a peer validator's replica message (raw bytes, signed request); 202 at once, the
  replica handles it in the host's receiver thread. ``GET /primary``: this replica's view, its primary
  and the primary's URL (edges and publishers find the round runner there).
- Every validator queues every published task. The current primary runs the round
  (``Session.run_published``, the same round code) with its edges; its ledger node is built with this
  service's sealer, which proposes the block to its replica and waits for the commit. A backup waits;
  if a task stays unsealed for ``task_timeout`` s in one view, it votes the primary out, and the new
  primary runs the round again from the same task.
- ``validate`` is :class:`~bmoe.protocol.pbft_sealing._ValidatorView`'s judgement (the ledger's one
  check-then-apply, with re-execution) against this validator's own state.
- A restarted validator's replica resumes from the chain on disk (``PbftReplica.restore``) and asks its
  peers at once (STATUS) for the blocks it missed; they arrive with their commit certificates, are
  re-executed like any proposal and appended in height order.
- On ``Committed`` the block with its commit certificate is judged by the replica's view and then by
  the node (``LedgerNode.adopt``: the ledger's one check-then-apply, its certificate included) and
  appended to this validator's SQLite chain (by the round worker, in height order; the primary's own
  block through ``LedgerNode.seal``, which judges it the same way).
  A committed block that fails that check (2f + 1 validators certified what this one cannot follow)
  is not appended: it is counted (``pbft.commit_refused``) and the validator stays at its head.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bmoe.consensus.engine import Committed
from bmoe.consensus.pbft import PbftConfig, PbftReplica
from bmoe.ledger.blocks import Block, block_from_bytes, proposal_bytes
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import ChainIntegrityError, LedgerError
from bmoe.ledger.node import Proposal, Sealer
from bmoe.net.http.auth import Refusal
from bmoe.net.http.json_body import MAX_JSON_DEPTH, json_depth
from bmoe.net.http.stats import Counters
from bmoe.net.validator.network_edges import NetworkEdges
from bmoe.net.validator.pbft_transport import PbftNetworkHost
from bmoe.net.validator.service import ValidatorService, ValidatorSettings, _one_line, _times
from bmoe.protocol.pbft_sealing import _ValidatorView, unsealed_pbft_block
from bmoe.protocol.reexecute import Reexecutor
from bmoe.run.session import Session
from bmoe.storage import BlobStore

DEFAULT_PBFT_TIMEOUT_S = 2.0
DEFAULT_TASK_TIMEOUT_S = 30.0
SEAL_PATIENCE_S = 120.0


def _decided_on_disk(chain: ChainStore | None) -> list[tuple[bytes, dict[str, Any]]]:
    """Heights 1, 2, … of this validator's own chain as its replica committed them (a restarted process
    resumes at its height and asks its peers only for what it missed)."""
    if chain is None:
        return []
    decided = []
    for block in chain.iter_blocks():
        if block.header.height == 0:
            continue  # the founding block, mined before consensus
        if block.certificate is None:
            raise ChainIntegrityError(block.header.height, "no commit certificate: not this PBFT run's chain")
        decided.append((proposal_bytes(block), block.certificate))
    return decided


class NotPrimary(Exception):
    """This validator is (no longer) the primary: the round is left to the one that is."""


class PbftValidatorService(ValidatorService):
    """``open_session(sealer)`` builds this validator's session with its ledger node sealing by ``sealer``
    (this service's: propose to the replica, wait for the commit)."""

    def __init__(self, open_session: Callable[[Sealer], Session], edges: NetworkEdges, admission_store: BlobStore,
                 reexec_store: BlobStore, settings: ValidatorSettings, counters: Counters, peers: Mapping[str, str],
                 pbft_timeout: float = DEFAULT_PBFT_TIMEOUT_S, task_timeout: float = DEFAULT_TASK_TIMEOUT_S) -> None:
        session = open_session(self._seal)  # sealing starts once the replica's host below exists
        super().__init__(session, edges, admission_store, settings, counters)
        self.name = next(i.name for i in session.ids.validators if i.address == settings.identity.address)
        self.peer_urls = dict(peers)
        self.task_timeout = task_timeout
        validators = {i.name: i.address for i in session.ids.validators}
        dataset = session.dataset
        self.view = _ValidatorView(Reexecutor(reexec_store, dataset.input_dim, dataset.num_classes))
        node = session.node
        self.view.start_from(node.view(), node.head_hash, node.seal_rules)  # the node judged its chain on disk
        self.commits: dict[int, Block] = {}
        replica = PbftReplica(settings.identity, validators, self._validate, PbftConfig(timeout=pbft_timeout))
        replica.restore(_decided_on_disk(node.chain), status_seq=time.time_ns())
        self.host = PbftNetworkHost(replica, settings.identity, self.peer_urls, self._on_commit)
        session.participants.primary = lambda: self.name  # this process only ever proposes as itself
        self._waiting: dict[tuple[str, int], float] = {}

    # --- the replica's host side (called under the host's lock) -----------------------------------
    def _validate(self, height: int, payload: bytes) -> str | None:
        return self.view.validate(height, payload)

    def _on_commit(self, committed: Committed) -> None:
        block = block_from_bytes(committed.payload)
        sealed = Block(block.header, block.transactions, block.proposer_signature, dict(committed.proof))
        try:
            self.view.adopt(sealed)
        except LedgerError:
            self.counters.add("pbft.commit_refused")
            return
        self.commits[committed.height] = sealed
        self.counters.add("pbft.committed")

    # --- sealing at the primary -------------------------------------------------------------------
    def _is_primary(self) -> bool:
        r = self.host.replica
        return r.active and r.primary == self.name

    def _seal(self, proposal: Proposal) -> tuple[Block, float]:
        started = time.perf_counter()
        with self.host.lock:
            if not self._is_primary():
                raise NotPrimary(f"{self.name} is not the primary of view {self.host.replica.view}")
        self.host.propose(proposal_bytes(unsealed_pbft_block(proposal)))
        height = proposal.height
        with self.host.changed:
            self.host.changed.wait_for(lambda: height in self.commits or not self._is_primary() or self._stopping,
                                       timeout=SEAL_PATIENCE_S)
            sealed = self.commits.get(height)
        if sealed is None:
            raise NotPrimary(f"block {height} not sealed by {self.name}: view {self.host.replica.view}")
        return sealed, time.perf_counter() - started

    # --- the round worker -------------------------------------------------------------------------
    def start(self) -> None:
        self.host.start()
        super().start()

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        with self.host.changed:
            self.host.changed.notify_all()
        self.host.stop()
        super().stop(timeout)

    def _apply_commits(self) -> None:
        """Bring the node (and its chain on disk) up to what the replica committed, in height order."""
        node = self.session.node
        applied = False
        while True:
            with self.host.lock:
                block = self.commits.get(node.view().height + 1)
                for h in [h for h in self.commits if h <= node.view().height]:
                    del self.commits[h]
            if block is None:
                break
            assert node.chain is not None
            node.adopt(block)  # judged again by the node, as every block it appends
            self.session.quorum.observe(node.view())  # a backup counts the tasks the primary sealed too
            self.index.add(block)
            applied = True
        if applied:
            self.session.participants.resync_nonces()
            with self._cond:
                self._head = self._sealed_head()

    def _run_tasks(self) -> None:
        while not self._stopping:
            self._apply_commits()
            with self._cond:
                task = self._queue[0] if self._queue else None
            if task is None:
                with self._cond:
                    self._cond.wait(0.05)
                continue
            task_id = str(task.payload["task_id"])
            if task_id in self.index:
                self._finish(task_id, {"task_id": task_id, "status": "sealed"})
                continue
            with self.host.lock:
                ready = self._is_primary() and self.host.replica.executed == self.session.node.view().height
                view = self.host.replica.view
            if ready:
                self._run_as_primary(task_id, task)
                continue
            since = self._waiting.setdefault((task_id, view), time.monotonic())
            if time.monotonic() - since > self.task_timeout and self.host.force_view_change(view):
                self.counters.add("pbft.task_timeouts")
            time.sleep(0.02)

    def _finish(self, task_id: str, status: dict[str, Any]) -> None:
        if status["status"] == "sealed":
            status = {**status, "quorum": self.session.quorum.to_dict()}
        with self._cond:
            if self._queue and str(self._queue[0].payload["task_id"]) == task_id:
                self._queue.popleft()
            self._quorum = self.session.quorum.to_dict()
            self._status[task_id] = status
            self._active_nonces.pop(task_id, None)
            self._head = self._sealed_head()

    def _run_as_primary(self, task_id: str, task: Any) -> None:
        node = self.session.node
        started = time.perf_counter()
        with self._cond:
            self._status[task_id] = {"task_id": task_id, "status": "running"}
        try:
            outcome = self.session.run_published(task)
        except NotPrimary:
            node.discard_pending()
            self.session.participants.resync_nonces()
            self.counters.add("pbft.not_primary")
            with self._cond:
                self._status[task_id] = {"task_id": task_id, "status": "queued"}
            return
        except Exception as exc:  # a task that cannot run is a failed task, never a dead validator
            node.discard_pending()
            self.session.participants.resync_nonces()
            self.counters.add("tasks.failed")
            self._finish(task_id, {"task_id": task_id, "status": "failed", "error": _one_line(exc)})
            return
        self.counters.add("tasks.sealed")
        head = node.chain.head() if node.chain is not None else None
        if head is not None:
            self.index.add(head)
        self._finish(task_id, {"task_id": task_id, "status": "sealed",
                               "times": _times(outcome, time.perf_counter() - started)})

    # --- routes -----------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [*super().routes(), Route("/consensus", self.post_consensus, methods=["POST"]),
                Route("/primary", self.primary, methods=["GET"])]

    async def post_consensus(self, request: Request) -> Response:
        sender = self.names.get(request.scope["bmoe.sender"])
        if sender not in self.host.replica.validators or sender == self.name:
            return self._refuse(Refusal(403, "not_a_validator", "only peer validators speak consensus"))
        body = await request.body()
        if json_depth(body) > MAX_JSON_DEPTH:
            return self._refuse(Refusal(400, "json_too_deep", f"body nests JSON deeper than {MAX_JSON_DEPTH} levels"))
        self.host.enqueue(sender, body)
        self.counters.add("pbft.received")
        return JSONResponse({"accepted": True}, status_code=202)

    async def primary(self, request: Request) -> Response:
        snap = await run_in_threadpool(self.host.snapshot)
        primary = str(snap["primary"])
        return JSONResponse({**snap, "primary_url": self.peer_urls.get(primary, self.settings.url)
                             if primary != self.name else self.settings.url})

    async def stats(self, request: Request) -> Response:
        base = await super().stats(request)
        body = json.loads(bytes(base.body))
        body["pbft"] = await run_in_threadpool(self.host.snapshot)
        return JSONResponse(body)

