"""The wire form of the work a validator hands its edges (``GET /work``) and of their answers (``POST /txs``).

Owns the JSON shapes only; who publishes and who collects is :mod:`bmoe.net.validator.network_edges`.

A work item, as the validator publishes it::

    {"work_id": 7, "open": true, "phase": "result" | "update" | "upload" | "idle",
     "round": 3, "task_id": "train-000003", "train": true,
     "task_cid": ..., "activation_cid": ...,            # phase result
     "gradient_cids": {"0": cid, ...}, "lr": 0.1,       # phase update
     "assignments": {address: [experts]}, "expert_cids": [...],
     "expected": [addresses that must answer], "nonces": {address: next nonce},
     "escalation": false}                                # true: a dispute's more work of the same task
                                                        # (an escalated update names task_cid, activation_cid)

An upload request, after a phase's answers (edges commit first and upload on demand)::

    {"work_id": 8, "open": true, "phase": "upload", "task_id": "train-000003", "of": "result" | "update",
     "requests": {address: [CIDs to upload]}, "expected": [addresses]}

An edge stores the objects it holds of its CIDs in the storage nodes and answers ``null``. An edge that
does not know the phase skips the item (it logs it): the validator then sees nothing arrive.

``work_id`` grows by one per published work item and never repeats in a validator's life (it
starts from the wall clock, so a restarted validator does not reuse ids its edges saw). An answer
is ``{"work_id": 7, "transaction": <tx_to_dict(tx)> | null}``: ``null`` says "nothing to send"
(a withholding edge, or one with nothing to update), so the validator need not wait for it.

An edge declares what it computes under in every poll, ``GET /work?after=7&wait=5&profile=f64&
numerics=threads%3D1+...`` (:func:`declaration_query`): its numeric profile's name and the effective
settings that decide its float bytes (:func:`bmoe.net.fleet_check.numerics_of`), so a validator can
refuse tasks under exact comparison when the enrolled edges cannot agree bit for bit. Both or neither.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from bmoe.edge.work import PHASE_RESULT, PHASE_UPDATE, PHASE_UPLOAD, WorkItem, upload_item
from bmoe.ledger.transactions import Transaction, tx_from_dict, tx_to_dict
from bmoe.protocol.edges import ResultWork, UpdateWork

__all__ = ["PHASE_IDLE", "PHASE_RESULT", "PHASE_UPDATE", "PHASE_UPLOAD", "TX_KIND", "Answer", "EdgeTask", "WireError",
           "answer_json", "declaration_query", "edge_task", "idle_json", "read_answer", "read_declaration",
           "result_work_json", "update_work_json", "upload_work_json"]

PHASE_IDLE = "idle"
TX_KIND = {PHASE_RESULT: "commitment", PHASE_UPDATE: "expert_update"}
MAX_DECLARATION = 200  # characters of a declared profile name or numerics string


class WireError(ValueError):
    """A work item or an answer that does not have the expected shape (one-line reason)."""


def result_work_json(work_id: int, work: ResultWork, expected: list[str], nonces: Mapping[str, int]) -> dict[str, Any]:
    return {"work_id": work_id, "open": True, "phase": PHASE_RESULT, "round": work.round_index,
            "task_id": work.task_id, "train": work.train, "task_cid": work.task_cid,
            "activation_cid": work.activation_cid, "assignments": dict(work.assignments),
            "expert_cids": list(work.expert_cids), "expected": expected, "nonces": dict(nonces),
            "escalation": work.escalation}


def update_work_json(work_id: int, work: UpdateWork, expected: list[str], nonces: Mapping[str, int]) -> dict[str, Any]:
    body = {"work_id": work_id, "open": True, "phase": PHASE_UPDATE, "round": work.round_index,
            "task_id": work.task_id, "train": True, "gradient_cids": {str(e): c for e, c in work.gradient_cids.items()},
            "lr": work.lr, "assignments": dict(work.assignments), "expert_cids": list(work.expert_cids),
            "expected": expected, "nonces": dict(nonces), "escalation": work.escalation}
    if work.escalation:
        body.update(task_cid=work.task_cid, activation_cid=work.activation_cid)
    return body


def upload_work_json(work_id: int, task_id: str, phase: str, requests: Mapping[str, list[str]],
                     expected: list[str]) -> dict[str, Any]:
    return {"work_id": work_id, "open": True, "phase": PHASE_UPLOAD, "task_id": task_id, "of": phase,
            "requests": {address: list(cids) for address, cids in requests.items()}, "expected": expected}


def idle_json(work_id: int) -> dict[str, Any]:
    return {"work_id": work_id, "open": False, "phase": PHASE_IDLE}


@dataclass(frozen=True)
class EdgeTask:
    """A work item as an edge reads it: its part of the work (the same :class:`WorkItem` the
    in-process gateway hands its edges), the item's id and the edge's next nonce (-1 for an upload
    request, which is answered by nothing)."""

    work_id: int
    nonce: int
    item: WorkItem


def edge_task(item: Mapping[str, Any], address: str) -> EdgeTask | None:
    """This edge's part of an open work item, or None when the item is closed or does not expect it."""
    try:
        if not item.get("open") or address not in item["expected"]:
            return None
        phase = item["phase"]
        if phase == PHASE_UPLOAD:
            cids = item["requests"][address]
            if not isinstance(cids, list) or not all(isinstance(cid, str) for cid in cids):
                raise ValueError("an upload request is a list of CIDs")
            return EdgeTask(int(item["work_id"]), -1, upload_item(str(item["task_id"]), cids))
        if phase not in TX_KIND:
            raise WireError(f"unknown phase {phase!r}")
        work_id, nonce = int(item["work_id"]), int(item["nonces"][address])
        common = {"phase": phase, "round_index": int(item["round"]), "task_id": str(item["task_id"]),
                  "train": bool(item["train"]), "experts": [int(e) for e in item["assignments"][address]],
                  "expert_cids": [str(c) for c in item["expert_cids"]]}
        escalation = item.get("escalation", False)
        if not isinstance(escalation, bool):
            raise ValueError("escalation must be true or false")
        if phase == PHASE_RESULT or escalation:
            common.update(task_cid=str(item["task_cid"]), activation_cid=str(item["activation_cid"]),
                          escalation=escalation)
        if phase == PHASE_RESULT:
            return EdgeTask(work_id, nonce, WorkItem(**common))
        gradients = {int(e): str(c) for e, c in item["gradient_cids"].items()}
        lr = float(item["lr"])
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"the learning rate must be a finite positive number, got {lr}")
        return EdgeTask(work_id, nonce, WorkItem(**common, gradient_cids=gradients, lr=lr))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WireError(f"malformed work item: {type(exc).__name__}: {exc}") from None


class Answer(NamedTuple):
    """An edge's posted answer: the work item, its signed transaction (or None), and the seconds it
    says it computed (measurement only: it feeds the latency split, never a decision)."""

    work_id: int
    transaction: Transaction | None
    compute_s: float


MAX_COMPUTE_S = 86_400.0


def answer_json(work_id: int, tx: Transaction | None, compute_s: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"work_id": work_id, "transaction": None if tx is None else tx_to_dict(tx)}
    if compute_s is not None:
        body["compute_s"] = compute_s
    return body


def read_answer(body: object) -> Answer:
    """The posted answer; :class:`WireError` or ``InvalidTransaction``."""
    if not isinstance(body, dict) or not {"work_id", "transaction"} <= set(body) <= {"work_id", "transaction",
                                                                                   "compute_s"}:
        raise WireError('expected a JSON object {"work_id": int, "transaction": object or null, '
                        '"compute_s": seconds (optional)}')
    work_id = body["work_id"]
    if isinstance(work_id, bool) or not isinstance(work_id, int):
        raise WireError("work_id must be an integer")
    compute_s = body.get("compute_s", 0.0)
    if isinstance(compute_s, bool) or not isinstance(compute_s, int | float) or not 0 <= compute_s <= MAX_COMPUTE_S:
        raise WireError(f"compute_s must be a number of seconds in [0, {MAX_COMPUTE_S:g}]")
    raw = body["transaction"]
    return Answer(work_id, None if raw is None else tx_from_dict(raw), float(compute_s))


def declaration_query(profile: str, numerics: str) -> dict[str, str]:
    """The query parameters an edge adds to ``GET /work`` to declare what it computes under."""
    return {"profile": profile, "numerics": numerics}


def read_declaration(query: Mapping[str, str]) -> tuple[str, str] | None:
    """``(profile, numerics)`` declared in a ``GET /work`` query, or None when the edge declares nothing."""
    profile, numerics = query.get("profile"), query.get("numerics")
    if profile is None and numerics is None:
        return None
    if profile is None or numerics is None:
        raise WireError("a declaration needs both profile and numerics")
    for name, value in (("profile", profile), ("numerics", numerics)):
        if not value or len(value) > MAX_DECLARATION or not value.isprintable():
            raise WireError(f"declared {name} must be 1 to {MAX_DECLARATION} printable characters")
    return profile, numerics
