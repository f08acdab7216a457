"""The validator process of a language model's deployment: :class:`ValidatorService` around an ``LMSession``.

A language model's training round is 2L ledger tasks over one batch (``protocol/lm/round.py``: forward layers up,
backward layers down), each sealed in a block of its own. The publisher posts the round's tasks back to back
(``POST /tasks``). Each is admitted as any task (signature, sender, unique id, the ledger's task rule with the next
nonce) and, here, as one of the model's: a language model's task id, the payload's round and kind the id's, the
batch stored, of this run's shape (sequences, context), token ids of the vocabulary with targets. The round worker
takes a round's first task and each next one in order as it is queued, waiting up to ``round_wait`` seconds, and
runs the whole round through ``LMSession.run_published``, the code an in-process run uses. A task that does not
open a round, or a round cut short (a task missing, out of order, of another round), fails its tasks with the
reason; nothing of it is pending. Tasks sealed before a failure stay sealed, and ``/head``'s ``next_round`` (one
past every round a task of which is sealed) is where a publisher continues.

Everything else (routes, authentication, edges' work items and answers, ``/head``, ``/stats``) is the
classifier's validator's (:mod:`bmoe.net.validator.service`).

Must not know: click, how the process was configured.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
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
    return {**dataclasses.asdict(outcome.times), "edges": outcome.edge_seconds,
            "edges_total": outcome.edge_total_seconds, "bytes": float(outcome.traffic.total), "round": wall}


class LMValidatorService(ValidatorService):
    """One validator of a language model's deployment: rounds of 2L tasks instead of one."""

    def __init__(self, session: LMSession, edges: NetworkEdges, admission_store: BlobStore,
                 settings: ValidatorSettings, counters: Counters, round_wait: float = DEFAULT_ROUND_WAIT_S) -> None:
        self.next_round = 0  # a new chain (a validator does not resume a language model's run)
        super().__init__(session, edges, admission_store, settings, counters)  # type: ignore[arg-type]
        self.lm_session = session
        self.round_wait = round_wait

    def run_config(self) -> RunConfig:
        return self.lm_session.config.run

    def _take(self) -> list[Transaction]:
        """A round's tasks: its first (``-f0``), then each next one of the round in order as it is queued (waiting
        up to ``round_wait`` seconds, the lock released meanwhile). A first task that does not open a round, or a
        round cut short, is what ``run_published`` refuses: its tasks fail, and the next round is taken afresh."""
        first = self._queue.popleft()
        parsed = lm_task(str(first.payload["task_id"]))
        if parsed is None or parsed[2:] != ("f", 0):
            return [first]
        expected = task_ids(parsed[1], self.lm_session.model_config.num_hidden_layers, True)
        tasks = [first]
        deadline = time.monotonic() + self.round_wait
        while len(tasks) < len(expected) and not self._stopping:
            if self._queue:
                if self._queue[0].payload["task_id"] != expected[len(tasks)]:
                    break  # another round's task, or one out of order: this round is cut short
                tasks.append(self._queue.popleft())
            elif time.monotonic() < deadline:
                self._cond.wait(timeout=max(0.0, deadline - time.monotonic()))
            else:
                break
        return tasks

    def _run(self, tasks: list[Transaction]) -> None:
        node = self.lm_session.node
        height = node.view().height
        started = time.perf_counter()
        ids = [str(tx.payload["task_id"]) for tx in tasks]
        statuses: dict[str, dict[str, Any]] = {}
        try:
            if self._stopping:
                raise RuntimeError("the validator is stopping")
            outcome = self.lm_session.run_published(tasks)
        except Exception as exc:  # a round that cannot run fails its tasks, never the validator
            error = _one_line(exc)
            statuses = {task_id: {"task_id": task_id, "status": "failed", "error": error} for task_id in ids}
        else:
            times = _round_times(outcome, time.perf_counter() - started)
            quorum = self.lm_session.quorum.to_dict()
            statuses = {task_id: {"task_id": task_id, "status": "sealed", "times": times, "quorum": quorum}
                        for task_id in ids}
        chain = node.chain
        if chain is not None:
            for sealed in range(height + 1, node.view().height + 1):  # tasks sealed before a failure stay sealed
                block = chain.block_at(sealed)
                self.index.add(block)
                for tx in block.transactions:
                    parsed = lm_task(str(tx.payload.get("task_id"))) if tx.kind == "task" else None
                    if parsed is not None:
                        self.next_round = max(self.next_round, parsed[1] + 1)  # a round's ids are never reused
                        task_id = str(tx.payload["task_id"])
                        if statuses.get(task_id, {}).get("status") != "sealed":
                            statuses[task_id] = {"task_id": task_id, "status": "sealed"}
        done = sum(status["status"] == "sealed" for status in statuses.values())
        self.counters.add("tasks.sealed", done)
        self.counters.add("tasks.failed", len(statuses) - done)
        with self._cond:
            self._head = self._sealed_head()
            self._quorum = self.lm_session.quorum.to_dict()
            self._status.update(statuses)
            for task_id in ids:
                self._active_nonces.pop(task_id, None)

    def exchange_key(self, phase: str, task_id: str) -> str:
        """A language model's exchanges by phase and direction: a forward task's results are one layer's
        round trip (the routed tokens pushed, each (layer, expert) call's output back)."""
        parsed = lm_task(task_id)
        return phase if parsed is None else f"{phase} {'forward' if parsed[2] == 'f' else 'backward'}"

    def _sealed_head(self) -> dict[str, Any]:
        """The sealed state, with the round a publisher's next round must be (``next_round``): one past every
        round a task of which is sealed, also one cut short (its task ids are taken)."""
        return {**super()._sealed_head(), "next_round": self.next_round}

    def _check_task_data(self, tx: Transaction, carried: Mapping[str, bytes]) -> Refusal | None:
        """A round's task: a language model's task id, its batch stored, token ids of the model's vocabulary with
        targets (training), as many tokens as it declares."""
        payload = tx.payload
        task_id = str(payload["task_id"])
        parsed = lm_task(task_id)
        if parsed is None or parsed[0] != "train":
            return Refusal(400, "bad_task_data", f"{task_id!r} is not a language model's training task "
                           "(train-RRRRRR-fL or train-RRRRRR-bL)")
        kind = "train" if parsed[2] == "b" else "infer"  # forward tasks are inference tasks (protocol/lm/round.py)
        if payload.get("round") != parsed[1] or payload.get("kind") != kind:
            return Refusal(400, "bad_task_data", f"task {task_id!r} must be of round {parsed[1]} and kind {kind}, "
                           f"not round {payload.get('round')!r} and kind {payload.get('kind')!r}")
        cid = tx.payload["data_cid"]
        try:
            data = self._task_data(cid, carried)
            if isinstance(data, Refusal):
                return data
            tokens, targets = decode_batch(data, self.lm_session.model_config.vocab_size)
        except PayloadError as exc:
            return Refusal(400, "bad_task_data", f"task data {cid} refused: {exc}")
        except (StorageError, ValueError) as exc:
            return Refusal(400, "missing_object", f"task data {cid} cannot be checked: {exc}")
        config, settings = self.lm_session.model_config, self.lm_session.config.lm
        shape = (settings.sequences, config.max_position_embeddings)  # type: ignore[attr-defined]
        if tuple(tokens.shape) != shape:
            return Refusal(400, "bad_task_data", f"task data {cid} holds token sequences {tuple(tokens.shape)}; "
                           f"this run's rounds are {shape} (sequences, context)")
        if targets is None or tokens.numel() != tx.payload["samples"]:
            return Refusal(400, "bad_task_data", f"task data {cid} holds {tokens.numel()} tokens "
                           f"{'with' if targets is not None else 'without'} targets; the task declares "
                           f"{tx.payload['samples']} training tokens")
        return None
