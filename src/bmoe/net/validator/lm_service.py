"""The validator process of a language model's deployment: :class:`ValidatorService` around an ``LMSession``.

A language model's training round is 2L ledger tasks over one batch (``protocol/lm/round.py``: forward layers up,
backward layers down), each sealed in a block of its own. The publisher posts the round's tasks back to back
(``POST /tasks``, each admitted as any task: signature, sender, unique id, the ledger's task rule with the next
nonce, the batch stored and well formed); the round worker takes a round's first task, waits up to
``round_wait`` seconds for the rest to be queued, and runs the whole round through
``LMSession.run_published``, the code an in-process run uses. Each task's status turns ``sealed`` as the round
ends (tasks sealed before a failure stay sealed; the rest are ``failed`` with the reason).

Everything else (routes, authentication, edges' work items and answers, ``/head``, ``/stats``) is the
classifier's validator's (:mod:`bmoe.net.validator.service`).

Must not know: click, how the process was configured.
"""

from __future__ import annotations

import time
from typing import Any

from bmoe.ledger.transactions import Transaction
from bmoe.lm.payloads import decode_batch
from bmoe.moe.payloads import PayloadError
from bmoe.net.http.auth import Refusal
from bmoe.net.http.stats import Counters
from bmoe.net.validator.network_edges import NetworkEdges
from bmoe.net.validator.service import ValidatorService, ValidatorSettings, _one_line
from bmoe.protocol.lm.round import LMRoundOutcome, lm_task, task_ids
from bmoe.run.config import RunConfig
from bmoe.run.lm.session import LMSession
from bmoe.storage import BlobStore, StorageError

DEFAULT_ROUND_WAIT_S = 30.0


def _round_times(outcome: LMRoundOutcome, wall: float) -> dict[str, float]:
    t = outcome.times
    return {"gate": t.gate, "compute": t.compute, "verify": t.verify, "loss": t.loss, "update": t.update,
            "consensus": t.consensus, "edges": outcome.edge_seconds, "edges_total": outcome.edge_total_seconds,
            "bytes": float(outcome.traffic.total), "round": wall}


class LMValidatorService(ValidatorService):
    """One validator of a language model's deployment: rounds of 2L tasks instead of one."""

    def __init__(self, session: LMSession, edges: NetworkEdges, admission_store: BlobStore,
                 settings: ValidatorSettings, counters: Counters, round_wait: float = DEFAULT_ROUND_WAIT_S) -> None:
        super().__init__(session, edges, admission_store, settings, counters)  # type: ignore[arg-type]
        self.lm_session = session
        self.round_wait = round_wait

    def run_config(self) -> RunConfig:
        return self.lm_session.config.run

    def _take(self) -> list[Transaction]:
        """A round's tasks: its first, and the rest once queued (waiting up to ``round_wait`` seconds, the lock
        released meanwhile); whatever arrived, which ``run_published`` refuses when it is not a whole round."""
        first = self._queue.popleft()
        parsed = lm_task(str(first.payload["task_id"]))
        wanted = len(task_ids(parsed[1], self.lm_session.model_config.num_hidden_layers, True)) - 1 if parsed else 0
        deadline = time.monotonic() + self.round_wait
        while len(self._queue) < wanted and not self._stopping and time.monotonic() < deadline:
            self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))
        return [first, *(self._queue.popleft() for _ in range(min(len(self._queue), wanted)))]

    def _run(self, tasks: list[Transaction]) -> None:
        node = self.lm_session.node
        height = node.view().height
        started = time.perf_counter()
        statuses: dict[str, dict[str, Any]] = {}
        try:
            outcome = self.lm_session.run_published(tasks)
        except Exception as exc:  # a round that cannot run fails its tasks, never the validator
            self.counters.add("tasks.failed", len(tasks))
            error = _one_line(exc)
            statuses = {str(tx.payload["task_id"]): {"task_id": tx.payload["task_id"], "status": "failed",
                                                     "error": error} for tx in tasks}
        else:
            self.counters.add("tasks.sealed", len(tasks))
            times = _round_times(outcome, time.perf_counter() - started)
            quorum = self.lm_session.quorum.to_dict()
            statuses = {str(tx.payload["task_id"]): {"task_id": tx.payload["task_id"], "status": "sealed",
                                                     "round_times": times, "quorum": quorum} for tx in tasks}
        chain = node.chain
        if chain is not None:
            for sealed in range(height + 1, node.view().height + 1):  # tasks sealed before a failure stay sealed
                block = chain.block_at(sealed)
                self.index.add(block)
                for tx in block.transactions:
                    if tx.kind == "task":
                        statuses[str(tx.payload["task_id"])] = {"task_id": tx.payload["task_id"],
                                                                **statuses.get(str(tx.payload["task_id"]), {}),
                                                                "status": "sealed"}
        with self._cond:
            self._head = self._sealed_head()
            self._quorum = self.lm_session.quorum.to_dict()
            self._status.update(statuses)
            for tx in tasks:
                self._active_nonces.pop(str(tx.payload["task_id"]), None)

    def _check_task_data(self, tx: Transaction) -> Refusal | None:
        """A round's task: a language model's task id, its batch stored, token ids of the model's vocabulary with
        targets (training), as many tokens as it declares."""
        task_id = str(tx.payload["task_id"])
        parsed = lm_task(task_id)
        if parsed is None or parsed[0] != "train":
            return Refusal(400, "bad_task_data", f"{task_id!r} is not a language model's training task "
                           "(train-RRRRRR-fL or train-RRRRRR-bL)")
        cid = tx.payload["data_cid"]
        try:
            if not self.admission_store.has(cid):
                return Refusal(400, "missing_object", f"task data {cid} is not in storage")
            tokens, targets = decode_batch(self.admission_store.get(cid), self.lm_session.model_config.vocab_size)
        except PayloadError as exc:
            return Refusal(400, "bad_task_data", f"task data {cid} refused: {exc}")
        except (StorageError, ValueError) as exc:
            return Refusal(400, "missing_object", f"task data {cid} cannot be checked: {exc}")
        if targets is None or tokens.numel() != tx.payload["samples"]:
            return Refusal(400, "bad_task_data", f"task data {cid} holds {tokens.numel()} tokens "
                           f"{'with' if targets is not None else 'without'} targets; the task declares "
                           f"{tx.payload['samples']} training tokens")
        return None
