"""A block's tasks as the explorer shows them: each expert's decision, its groups, who agreed, who
dissented and with what evidence.

Owns reading one applied block: the replayed state (``ledger/state.py``) gives each task's
commitments and verdicts, the block's own transactions give what the validators recorded (decision
entries, misbehaviour records with their evidence, the loss). Must not know HTML or files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bmoe.explorer.model import Accusation, Commit, ExpertDecision, TaskView
from bmoe.ledger.blocks import Block
from bmoe.ledger.state import LedgerState, TaskState
from bmoe.ledger.transactions import Transaction

DECISION_KINDS = {"acceptance": "result", "update_acceptance": "update"}


def _records(transactions: tuple[Transaction, ...], task_id: str) -> dict[str, list[dict[str, Any]]]:
    """The misbehaviour records of ``task_id`` by phase, each with its accused edge."""
    found: dict[str, list[dict[str, Any]]] = {"result": [], "update": []}
    for tx in transactions:
        if tx.kind == "misbehaviour" and tx.payload["task_id"] == task_id:
            found[tx.payload["phase"]] += [{**record, "edge": tx.payload["edge"]} for record in tx.payload["records"]]
    return found


def _decision(task: TaskState, phase: str, entry: Mapping[str, Any], records: list[dict[str, Any]]) -> ExpertDecision:
    expert = entry["expert"]
    commitments = task.commitments[phase].get(expert, {})
    verdict = task.verdicts[phase][expert]
    accusations = tuple(
        Accusation(record["edge"], record["reason"], record["evidence"],
                   commitments[record["edge"]][1] if record["edge"] in commitments else None,
                   record.get("distance"))
        for record in records if record["expert"] == expert)
    groups = entry.get("groups")
    return ExpertDecision(
        expert=expert, phase=phase, status=entry["status"], digest=entry["digest"], cid=entry["cid"],
        groups=None if groups is None else tuple(tuple(group) for group in groups),
        supporters=verdict.supporters, dissenters=verdict.dissenters, missing=verdict.missing,
        commits=tuple(Commit(edge, digest, cid) for edge, (digest, cid) in sorted(commitments.items())),
        accusations=accusations, disputed=task.escalated.get(expert) == phase)


def task_views(state: LedgerState, block: Block, block_hash: str) -> list[TaskView]:
    """Every task of ``block``, read from ``state`` (the state right after ``block`` was applied)."""
    views = []
    for task in state.tasks.values():
        decided: dict[str, list[ExpertDecision]] = {"result": [], "update": []}
        records = _records(block.transactions, task.task_id)
        gate: Mapping[str, Any] = {}
        output_cid = None
        for tx in block.transactions:
            if tx.payload.get("task_id") != task.task_id:
                continue
            phase = DECISION_KINDS.get(tx.kind)
            if phase is not None:
                decided[phase] += [_decision(task, phase, entry, records[phase]) for entry in tx.payload["decisions"]]
                output_cid = tx.payload.get("output_cid", output_cid)
            elif tx.kind == "gate_update":
                gate = tx.payload
        views.append(TaskView(
            task_id=task.task_id, kind=task.kind, round=task.round, samples=task.samples,
            height=block.header.height, block_hash=block_hash, data_cid=task.data_cid,
            gate_cid=_activation_gate(block, task.task_id), activation_cid=task.activation_cid or "",
            counts=tuple(task.counts or ()), output_cid=output_cid,
            loss=float(gate["loss"]) if "loss" in gate else None, new_gate_cid=gate.get("gate_cid"),
            gradient_cids={int(expert): cid for expert, cid in gate.get("gradient_cids", {}).items()},
            decisions=tuple(decided["result"]), updates=tuple(decided["update"])))
    return views


def _activation_gate(block: Block, task_id: str) -> str:
    for tx in block.transactions:
        if tx.kind == "activation" and tx.payload["task_id"] == task_id:
            return str(tx.payload["gate_cid"])
    return ""
