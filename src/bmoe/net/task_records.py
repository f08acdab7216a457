"""What a validator tells a publisher about a task, derived from the block that sealed it.

Owns :func:`sealed_task_record` (the status of a sealed task, read from its block's transactions:
output CID, loss, decisions, misbehaviour) and :class:`TaskIndex` (task id -> height of the block
that sealed it, rebuilt by scanning the chain when a validator starts). Nothing here is trusted
memory: a restarted validator answers the same from its chain.
"""

from __future__ import annotations

import threading
from typing import Any

from bmoe.ledger.blocks import Block, block_hash
from bmoe.ledger.chainstore import ChainStore


def block_task_ids(block: Block) -> list[str]:
    return [str(tx.payload.get("task_id")) for tx in block.transactions if tx.kind == "task"]


def sealed_task_record(block: Block, task_id: str) -> dict[str, Any]:
    """Status ``sealed`` with the block's height and hash, and what its transactions recorded for ``task_id``."""
    record: dict[str, Any] = {"task_id": task_id, "status": "sealed", "height": block.header.height,
                              "block_hash": block_hash(block), "output_cid": None, "loss": None,
                              "accepted": 0, "rejected": 0, "updates_accepted": 0, "misbehaviour": []}
    for tx in block.transactions:
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
    """Task id -> height of its block, for every task the chain holds (thread-safe)."""

    def __init__(self, chain: ChainStore) -> None:
        self.chain = chain
        self._heights: dict[str, int] = {}
        self._lock = threading.Lock()
        for block in chain.iter_blocks():
            self.add(block)

    def add(self, block: Block) -> None:
        with self._lock:
            for task_id in block_task_ids(block):
                self._heights[task_id] = block.header.height

    def __contains__(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._heights

    def record(self, task_id: str) -> dict[str, Any] | None:
        with self._lock:
            height = self._heights.get(task_id)
        return None if height is None else sealed_task_record(self.chain.block_at(height), task_id)
