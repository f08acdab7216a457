"""An edge process's work: the same :class:`~bmoe.edge.work.WorkHandler` as in-process, fed over HTTP.

Owns two things. :class:`EdgeNode` hands one work item (:class:`~bmoe.net.work_wire.EdgeTask`) to the
edge's work handler, the one the in-process gateway uses too, and returns its signed transaction, or
None. What it adds is the process's part: it sets its signer's nonce from the work item (which the
validator reads from the ledger) and starts its runtime's round at step 2. :class:`EdgeLoop` is the
transport: it long-polls ``GET /work``, hands the item to the node and posts the answer to
``POST /txs``; every reply must be signed by the validator's key. An upload request (edges commit first
and upload on demand) is answered the same way: the node puts the objects asked for that it holds into
the storage nodes, and the loop posts a null answer.

The loop asks for frames (``frames=1``, :mod:`bmoe.net.frames`): the item arrives with the objects the edge
computes on (kept in its store's memory, so computing reads nothing from the storage nodes; or just the rows
routed to its experts), and the answer goes back as a frame carrying the committed objects the item names in
``carry``. With one validator the answer asks for the next item too (``POST /txs?next=1``): the reply, once the
answer is admitted, is that item, so each phase costs the edge one exchange instead of a poll and an answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import httpx

from bmoe.edge.runtime import ExpertRuntime, TaskInputs
from bmoe.edge.work import PHASE_RESULT, PHASE_UPLOAD, WorkHandler
from bmoe.edge.worker import EdgeWorker
from bmoe.ledger.transactions import Transaction
from bmoe.moe.payloads import PayloadError, decode_routed_rows
from bmoe.net.errors import UnauthenticResponse
from bmoe.net.frames import FRAME_MEDIA_TYPE, FrameError, decode_frame, encode_frame, is_frame
from bmoe.net.http.auth import SignedAuth
from bmoe.net.http.tcp import client_transport
from bmoe.net.work_wire import EdgeTask, WireError, answer_json, edge_task
from bmoe.protocol.validator import committed_entries
from bmoe.storage import BlobStore, StorageError

LONG_POLL_S = 5.0  # the validator holds a GET /work this long when nothing is new


@dataclass
class EdgeNode:
    """One edge process: its worker (signer, behaviour, runtime) behind the shared work handler."""

    worker: EdgeWorker
    runtime: ExpertRuntime
    store: BlobStore
    num_experts: int

    def __post_init__(self) -> None:
        self.handler = WorkHandler(self.worker, self.store, self.num_experts)

    @property
    def address(self) -> str:
        return self.worker.address

    @property
    def last_compute_s(self) -> float:
        """The last item's measured compute time (forward passes or SGD steps)."""
        return self.handler.last_compute_s

    def handle(self, task: EdgeTask, routed_rows: bytes | None = None) -> Transaction | None:
        """The edge's answer to ``task``: its signed commitment / expert update, or None (nothing to send,
        or an upload request, whose objects it stored: durable when this returns). ``routed_rows``: the rows of
        its experts its validator pushed (``encode_routed_rows``), computed on instead of the whole task."""
        if task.item.phase == PHASE_UPLOAD:
            answer = self.handler.handle(task.item)
            self.store.sync()
            return answer
        self.worker.signer.next_nonce = task.nonce
        if task.item.phase == PHASE_RESULT and not task.item.escalation:
            self.runtime.new_round()  # this process's runtime serves this edge alone
        if routed_rows is not None and task.item.phase == PHASE_RESULT:
            item = task.item
            x, groups = decode_routed_rows(routed_rows)  # PayloadError: the caller answers nothing
            self.runtime.adopt_task(TaskInputs(item.task_id, item.task_cid, item.activation_cid, x, groups))
        return self.handler.handle(task.item)

    def keep(self, objects: Mapping[str, bytes]) -> None:
        """Hold the objects a work item brought (checked against their CIDs already), so that computing it reads
        none from the storage nodes."""
        keep = getattr(self.store, "keep", None)
        if callable(keep):
            for cid, data in objects.items():
                keep(cid, data)

    def carried(self, tx: Transaction | None, experts: Collection[int]) -> dict[str, bytes]:
        """The committed objects of ``tx`` for ``experts`` that this edge holds: what its answer carries."""
        if tx is None:
            return {}
        outbox = self.worker.outbox
        return {cid: outbox[cid] for entry in committed_entries(tx)
                if int(entry["expert"]) in experts and (cid := str(entry["cid"])) in outbox}


class EdgeLoop:
    """Poll the validator for work, answer it; runs until ``stop()`` returns True."""

    def __init__(self, node: EdgeNode, validator_url: str, validator_address: str,
                 log: Callable[[str], None] = print, timeout: float = 30.0,
                 validator_urls: list[str] | None = None, trusted: list[str] | None = None,
                 declared: Mapping[str, str] | None = None) -> None:
        """``validator_urls`` (PBFT): every validator; the edge works for the current primary, which any of
        them names at ``GET /primary``; ``trusted``: the addresses whose signed replies are accepted;
        ``declared``: query parameters sent with every poll (its profile, :func:`declaration_query`)."""
        self.node = node
        self.url = validator_url.rstrip("/")
        self.urls = [u.rstrip("/") for u in validator_urls or [validator_url]]
        self._ask = 0
        self._last: dict[str, int] = {}
        auth = SignedAuth(node.worker.signer.identity, trusted=trusted or [validator_address])
        self.client = httpx.Client(auth=auth, timeout=httpx.Timeout(timeout, connect=2.0), transport=client_transport())
        self.log = log
        self.declared = dict(declared or {})
        self.last_work = -1
        self.answered = 0
        self._next: httpx.Response | None = None  # the next work item, sent with the last answer's acceptance

    def close(self) -> None:
        self.client.close()

    def _locate_primary(self) -> None:
        """Several validators (PBFT): work for the primary that the next one asked names."""
        url = self.urls[self._ask % len(self.urls)]
        self._ask += 1
        try:
            reply = self.client.get(f"{url}/primary", timeout=2.0)
        except (httpx.HTTPError, UnauthenticResponse):
            return
        if reply.status_code == 200:
            primary = str(reply.json().get("primary_url", url)).rstrip("/")
            if primary != self.url:
                self._last[self.url] = self.last_work
                self.url = primary
                self.last_work = self._last.get(primary, -1)

    def poll_once(self) -> bool:
        """One long poll (or the work item that came with the last answer's acceptance); True when a work item
        was answered."""
        reply, self._next = self._next, None
        if reply is None:
            wait = LONG_POLL_S
            if len(self.urls) > 1:
                self._locate_primary()
                wait = 1.0
            query = {"after": str(self.last_work), "wait": str(wait), "frames": "1", **self.declared}
            reply = self.client.get(f"{self.url}/work", params=query)
        if reply.status_code != 200:
            self.log(f"GET /work refused: {reply.status_code} {reply.text[:200]}")
            time.sleep(0.5)
            return False
        objects: dict[str, bytes] = {}
        if is_frame(reply.content):  # the work item and the objects it computes on
            try:
                item, objects = decode_frame(reply.content)
            except FrameError as exc:
                self.log(f"GET /work: {exc}")
                time.sleep(0.5)
                return False
        else:
            item = reply.json()
        work_id = int(item.get("work_id", -1))
        if work_id == self.last_work:
            return False  # nothing new (a lower id is new too: a restarted validator)
        try:
            task = edge_task(item, self.node.address)
        except WireError as exc:
            self.log(f"work {work_id}: {exc}")
            self.last_work = work_id
            return False
        self.last_work = work_id
        if task is None:
            return False
        self.node.keep(objects)
        routed = item.get("routed")
        rows = objects.get(routed) if isinstance(routed, str) else None
        carry = {int(e) for e in item.get("carry", []) if isinstance(e, int) and not isinstance(e, bool)}
        try:
            tx = self.node.handle(task, rows)
        except (StorageError, PayloadError, ValueError, KeyError) as exc:
            what = f"{task.item.phase} of {task.item.task_id}"
            self.log(f"work {work_id} ({what}): cannot compute: {exc}; answering nothing")
            tx = None
        carried = self.node.carried(tx, carry)
        answer = self._answer(work_id, tx, carried)
        if answer.status_code == 413 and carried:  # too large for the validator: it asks for the objects later
            self.log(f"work {work_id}: the answer with its objects is too large for the validator; sent without")
            answer = self._answer(work_id, tx, {})
        if answer.status_code != 200:
            self.log(f"work {work_id}: answer refused: {answer.status_code} {answer.text[:300]}")
            return False
        self.answered += 1
        if is_frame(answer.content):
            self._next = answer  # accepted, and the next work item came with it: the next poll reads it
        sent = f"{len(self.node.handler.last_uploaded)} objects" if task.item.phase == PHASE_UPLOAD else (
            tx.kind if tx else "nothing")
        self.log(f"work {work_id}: {task.item.phase} of {task.item.task_id}: sent {sent}")
        return True

    def _answer(self, work_id: int, tx: Transaction | None, objects: Mapping[str, bytes]) -> httpx.Response:
        """POST the answer. With one validator, ask for the next work item in the same exchange (``next=1``: the
        reply is what ``GET /work?after=WORK_ID`` would send); under PBFT the next poll first asks who is primary."""
        frame = encode_frame(answer_json(work_id, tx, self.node.last_compute_s), objects)
        follow = {"next": "1", "wait": str(LONG_POLL_S), "frames": "1", **self.declared} if len(self.urls) == 1 else {}
        return self.client.post(f"{self.url}/txs", content=frame, params=follow,
                                headers={"content-type": FRAME_MEDIA_TYPE})

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        backoff = 0.1
        while not stop():
            try:
                self.poll_once()
                backoff = 0.1
            except (httpx.HTTPError, UnauthenticResponse, ValueError) as exc:
                self.log(f"validator {self.url} unreachable or not authentic: {type(exc).__name__}: {exc}")
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
