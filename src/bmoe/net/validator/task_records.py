"""What a validator tells a publisher about a task, derived from the block that sealed it.

Owns :func:`sealed_task_record` (the status of a sealed task, read from its block's transactions:
output CID, loss, decisions, misbehaviour) and :class:`TaskIndex` (task id -> height of the block
that sealed it, rebuilt by scanning the chain when a validator starts). Nothing here is trusted
memory: a restarted validator answers the same from its chain. A traditional server (no ledger)
answers ``done`` records from the transactions of the rounds it ran.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from bmoe.ledger.blocks import Block, block_hash
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.transactions import Transaction


def block_task_ids(block: Block) -> list[str]:
    return [str(tx.payload.get("task_id")) for tx in block.transactions if tx.kind == "task"]


def sealed_task_record(block: Block, task_id: str) -> dict[str, Any]:
    """Status ``sealed`` with the block's height and hash, and what its transactions recorded for ``task_id``."""
    return task_record({"task_id": task_id, "status": "sealed", "height": block.header.height,
                        "block_hash": block_hash(block)}, block.transactions, task_id)


def done_task_record(transactions: Iterable[Transaction], task_id: str) -> dict[str, Any]:
    """Status ``done``: a round a server without a ledger ran (the traditional framework); no block."""
    return task_record({"task_id": task_id, "status": "done", "height": None, "block_hash": None},
                       transactions, task_id)


def task_record(base: dict[str, Any], transactions: Iterable[Transaction], task_id: str) -> dict[str, Any]:
    """``base`` plus what ``transactions`` recorded for ``task_id``: output CID, loss, decisions, misbehaviour."""
    record: dict[str, Any] = {**base, "output_cid": None, "loss": None, "accepted": 0, "rejected": 0,
                              "updates_accepted": 0, "misbehaviour": []}
    for tx in transactions:
        payload = tx.payload
        if payload.get("task_id") != task_id:
            continue
        if tx.kind == "task":
            record.update(kind=payload.get("kind"), round=payload.get("round"), data_cid=payload.get("data_cid"),
                          samples=payload.get("samples"))
        elif tx.kind == "acceptance":
            statuses = [d.get("status") for d in payload.get("decisions", [])]
            record.update(output_cid=payload.get("output_cid"), accepted=statuses.count("accepted"),
                          rejected=len(statuses) - statuses.count("accepted"), decisions=payload.get("decisions"))
        elif tx.kind == "update_acceptance":
            record["updates_accepted"] = sum(d.get("status") == "accepted" for d in payload.get("decisions", []))
        elif tx.kind == "gate_update":
            record["loss"] = payload.get("loss")
        elif tx.kind == "misbehaviour":
            record["misbehaviour"].append({"edge": payload.get("edge"), "phase": payload.get("phase"),
                                           "records": payload.get("records")})
    return record


class TaskIndex:
    """Task id -> height of its block, for every task the chain holds (thread-safe).

    Without a chain (a traditional server keeps no ledger) it holds the records of the rounds this
    process ran, in memory: a restarted server forgets them, as such a server would."""

    def __init__(self, chain: ChainStore | None) -> None:
        self.chain = chain
        self._heights: dict[str, int] = {}
        self._done: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        for block in chain.iter_blocks() if chain is not None else ():
            self.add(block)

    def add(self, block: Block) -> None:
        with self._lock:
            for task_id in block_task_ids(block):
                self._heights[task_id] = block.header.height

    def add_done(self, transactions: Iterable[Transaction]) -> None:
        """The round of ``transactions`` ran without a block (no ledger)."""
        transactions = tuple(transactions)
        with self._lock:
            for task_id in {str(tx.payload.get("task_id")) for tx in transactions if tx.kind == "task"}:
                self._done[task_id] = done_task_record(transactions, task_id)

    def __contains__(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._heights or task_id in self._done

    def record(self, task_id: str) -> dict[str, Any] | None:
        with self._lock:
            height = self._heights.get(task_id)
            done = self._done.get(task_id)
        if done is not None:
            return dict(done)
        if height is None or self.chain is None:
            return None
        return sealed_task_record(self.chain.block_at(height), task_id)
