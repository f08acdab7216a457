"""A chunk's verification: the fast path's expert calls re-computed by replicas, decided, lies located to rows.

Given the calls the engine logged since the last chunk (per (layer, expert): the rows, their sequences and token
positions, the fast path's outputs) and each call's primary:

1. every primary commits to what it answered (its signature over the call's inputs digest and outputs CID,
   ``ledger/generation.call_message``); a primary gone by then has withheld its commitment;
2. each call the policy checks is re-computed by its replicas, one batched call per (edge, layer) with every
   expert the edge re-computes there (the edges at once, ``fan_out.py``), and each replica commits to its outputs;
3. a call whose answers are one CID is accepted; any difference, or a missing answer, is a **dispute**: the call
   is re-computed by every edge not yet asked, and the output a quorum of the enrolled edges committed to is
   accepted (none: :class:`NoQuorum`, and the chunk is not recorded); under a placement (``ledger/placement.py``)
   "every edge" and "the enrolled edges" are the slot's holders, in every step here;
4. an edge whose commitment differs from the accepted output is recorded (``dissent``) with the rows where it
   differs, as (sequence, token position); an edge asked in a dispute that committed nothing, ``withheld``. Where
   the primary's outputs (what generation used) differ, each of its sequences must roll back to the earliest token
   a wrong row's step generated (``rollbacks``).

The accepted outputs, any dissenting outputs (the evidence) and the chunk's records are put in the store, and
:attr:`ChunkOutcome.payload` is the ``generation_chunk`` transaction's payload.

Must not know: the engine's state, sampling, the ledger node (it only builds the payload).
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from bmoe.ledger.generation import MAX_ROWS_NAMED, output_leaf, quorum
from bmoe.ledger.merkle import merkle_root
from bmoe.lm.decoding.expert_calls import CallRows
from bmoe.protocol.generation.edges import EdgeGone, GenerationEdge
from bmoe.protocol.generation.fan_out import fan_out
from bmoe.protocol.generation.policy import CheckPolicy
from bmoe.protocol.generation.records import CallRecord, encode_records
from bmoe.storage import BlobStore, cid_of


class NoQuorum(RuntimeError):
    """A disputed call on which no output has a quorum of the enrolled edges: nothing can be accepted."""


def rows_bytes(rows: torch.Tensor) -> bytes:
    """A call's rows (n, d) as the bytes its digests and CIDs are of: float32, little-endian, row-major."""
    return rows.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4", copy=False).tobytes()


def differing_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Which rows of ``a`` and ``b`` (n, d) differ in any bit, (n,) bool (all of them when the shapes differ)."""
    if a.shape != b.shape:
        return torch.ones(a.shape[0], dtype=torch.bool)
    a32, b32 = a.detach().to("cpu", torch.float32).contiguous(), b.detach().to("cpu", torch.float32).contiguous()
    return (a32.view(torch.int32) != b32.view(torch.int32)).any(dim=1)


@dataclass(frozen=True)
class ChunkContext:
    """What every chunk of one generation session shares."""

    generation: str
    edges: Mapping[str, GenerationEdge]  # the edges this session can reach, by address
    enrolled: Sequence[str]  # every enrolled edge, in the genesis's order (the quorum counts them)
    experts_per_layer: int
    policy: CheckPolicy
    store: BlobStore
    holders: list[list[str]] = field(default_factory=list)  # slot -> its holders under a placement (empty: none)

    def eligible(self, slot: int) -> Sequence[str]:
        """The edges that may answer, re-compute and dispute ``slot``'s calls (the quorum counts them): its holders
        under a placement (``ledger/placement.py``; the session updates them in place between chunks), else every
        enrolled edge."""
        return self.holders[slot] if self.holders else self.enrolled


@dataclass
class _Call:
    slot: int
    layer: int
    expert: int
    rows: CallRows
    primary: str
    inputs: str  # SHA-256 of the inputs' bytes (hex)
    fast: str  # CID of the fast path's outputs
    answers: dict[str, torch.Tensor] = field(default_factory=dict)  # edge -> its outputs (n, d)
    commitments: dict[str, dict[str, str]] = field(default_factory=dict)  # edge -> {outputs, signature}
    replicas: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # every edge asked to re-compute it (replicas, escalation)
    checked: bool = False
    disputed: bool = False
    accepted: str = ""


@dataclass
class ChunkOutcome:
    """A verified chunk: the transaction's payload, what generation must roll back, and who misbehaved."""

    payload: dict[str, Any]
    accepted: dict[tuple[int, int], torch.Tensor]  # (layer, expert) -> the accepted outputs (n, d)
    rollbacks: dict[int, int]  # engine sequence id -> the token position to roll back to
    accused: set[str]  # edges with a dissent recorded in this chunk
    gone: set[str]  # edges that did not answer
    replica_rows: int  # rows re-computed by replicas (the verification's extra expert compute)


def verify_chunk(ctx: ChunkContext, chunk: int, seed: int, calls: Mapping[tuple[int, int], CallRows],
                 primaries: Mapping[int, str], tokens: int, distrusted: Collection[str] = frozenset()
                 ) -> ChunkOutcome:
    """Verify one chunk's ``calls`` (the engine's log, ``CallLog.take()``) answered by ``primaries`` (slot ->
    edge); ``seed`` draws the checks, ``tokens`` is how many tokens its steps generated. ``distrusted`` edges (a
    record against them earlier in the session) re-compute nothing: neither drawn as replicas nor asked in a
    dispute, so a liar caught once does not bring its disputes, and their evidence, into every later chunk."""
    gone: set[str] = set(distrusted)
    work = [_call(ctx, layer, expert, rows, primaries) for (layer, expert), rows in sorted(calls.items())]
    for call in work:
        call.answers[call.primary] = call.rows.outputs
        _commit(ctx, chunk, call, call.primary, call.fast, gone)
    for call in work:
        call.checked = ctx.policy.checked(seed, call.slot)
        if call.checked:
            others = [a for a in ctx.eligible(call.slot) if a in ctx.edges and a != call.primary and a not in gone]
            call.replicas = ctx.policy.replicas_for(seed, call.slot, others)
    _recompute(ctx, chunk, work, {call.slot: call.replicas for call in work}, gone)
    for call in work:
        answers = {call.commitments[a]["outputs"] for a in [call.primary, *call.replicas] if a in call.commitments}
        complete = all(a in call.commitments for a in [call.primary, *call.replicas])
        call.disputed = call.checked and not (complete and answers == {call.fast})
    disputed = [call for call in work if call.disputed]
    _recompute(ctx, chunk, disputed, {call.slot: [a for a in ctx.eligible(call.slot) if a in ctx.edges
                                                  and a not in gone and a not in call.answers] for call in disputed},
               gone)
    for call in work:
        call.accepted = _decide(call, len(ctx.eligible(call.slot))) if call.disputed else call.fast
    records, rollbacks, accused = _judge(work)
    accepted = {(call.layer, call.expert): _accepted_rows(call) for call in work}
    _store(ctx, work, accepted)
    records_cid = ctx.store.put(encode_records(ctx.generation, chunk, seed, ctx.policy.name,
                                               [_record(call) for call in work], torch.get_num_threads()))
    payload = {
        "generation": ctx.generation, "chunk": chunk, "records": records_cid,
        "outputs_root": merkle_root([output_leaf(call.slot, call.accepted) for call in work]) if work else "0" * 64,
        "calls": len(work), "rows": sum(int(call.rows.inputs.shape[0]) for call in work), "tokens": tokens,
        "checked": sum(call.checked for call in work), "seed": seed,
        "disputes": [{"slot": call.slot, "inputs": call.inputs, "accepted": call.accepted,
                      "commitments": dict(sorted(call.commitments.items()))} for call in disputed],
        "records_against": records,
    }
    replica_rows = sum(int(call.rows.inputs.shape[0]) * (len(call.answers) - (call.primary in call.answers))
                       for call in work)
    return ChunkOutcome(payload, accepted, rollbacks, accused, gone - set(distrusted), replica_rows)


def _call(ctx: ChunkContext, layer: int, expert: int, rows: CallRows, primaries: Mapping[int, str]) -> _Call:
    slot = layer * ctx.experts_per_layer + expert
    return _Call(slot, layer, expert, rows, primaries[slot], hashlib.sha256(rows_bytes(rows.inputs)).hexdigest(),
                 cid_of(rows_bytes(rows.outputs)))


def _commit(ctx: ChunkContext, chunk: int, call: _Call, edge: str, outputs: str, gone: set[str]) -> None:
    try:
        signature = ctx.edges[edge].commit(ctx.generation, chunk, call.slot, call.inputs, outputs)
    except EdgeGone:
        gone.add(edge)
        return
    call.commitments[edge] = {"outputs": outputs, "signature": signature}


def _recompute(ctx: ChunkContext, chunk: int, work: Sequence[_Call], asked: Mapping[int, Sequence[str]],
               gone: set[str]) -> None:
    """Have each edge re-compute the calls it is asked for, one batched call per (edge, layer), and commit."""
    plan: dict[str, dict[int, list[_Call]]] = defaultdict(lambda: defaultdict(list))
    for call in work:
        for edge in asked[call.slot]:
            plan[edge][call.layer].append(call)
            call.asked.append(edge)
    edges = [edge for edge in plan if edge not in gone]
    computed = fan_out([functools.partial(_compute_layers, ctx.edges[edge], plan[edge]) for edge in edges])
    for edge, answers in zip(edges, computed, strict=True):  # applied in plan order: the records do not depend
        if isinstance(answers, Exception):                    # on which edge answered first
            raise answers
        for calls, outputs in answers:
            if edge in gone or outputs is None:
                gone.add(edge)
                break
            for call in calls:
                out = outputs.get(call.expert)
                if not isinstance(out, torch.Tensor):
                    continue  # no answer for this call: withheld
                call.answers[edge] = out
                _commit(ctx, chunk, call, edge, cid_of(rows_bytes(out)), gone)


def _compute_layers(edge: GenerationEdge, layers: Mapping[int, list[_Call]]
                    ) -> list[tuple[list[_Call], dict[int, torch.Tensor] | None]]:
    """One edge's re-computation, a batched call per layer in layer order, up to the first it does not answer
    (``None``: gone from there)."""
    answers: list[tuple[list[_Call], dict[int, torch.Tensor] | None]] = []
    for layer, calls in sorted(layers.items()):
        try:
            answers.append((calls, edge.compute(layer, {call.expert: call.rows.inputs for call in calls})))
        except EdgeGone:
            answers.append((calls, None))
            break
    return answers


def _decide(call: _Call, enrolled: int) -> str:
    """The output a quorum of the enrolled edges committed to in a disputed call."""
    support: dict[str, int] = defaultdict(int)
    for commitment in call.commitments.values():
        support[commitment["outputs"]] += 1
    best = max(support.items(), key=lambda item: (item[1], item[0]), default=("", 0))
    if best[1] < quorum(enrolled):
        raise NoQuorum(f"layer {call.layer}, expert {call.expert}: the most any output has is {best[1]} "
                       f"commitments of {enrolled} edges, fewer than the quorum {quorum(enrolled)}")
    return best[0]


def _accepted_rows(call: _Call) -> torch.Tensor:
    if call.accepted == call.fast:
        return call.rows.outputs
    edge = next(e for e, c in call.commitments.items() if c["outputs"] == call.accepted)
    return call.answers[edge]


def _judge(work: Sequence[_Call]) -> tuple[list[dict[str, Any]], dict[int, int], set[str]]:
    """Records against the edges that differed from the accepted outputs in disputed calls, the rollbacks that
    the primaries' wrong rows force, and the accused edges."""
    records: list[dict[str, Any]] = []
    rollbacks: dict[int, int] = {}
    accused: set[str] = set()
    for call in work:
        if call.accepted != call.fast:  # generation used a wrong answer: roll each sequence back to its first
            accepted = _accepted_rows(call)
            wrong = differing_rows(call.rows.outputs, accepted)  # (n,)
            for sequence, produced in zip(call.rows.sequences[wrong].tolist(), call.rows.produced[wrong].tolist(),
                                          strict=True):
                rollbacks[sequence] = min(produced, rollbacks.get(sequence, produced))
        if not call.disputed:
            continue
        accepted = _accepted_rows(call)
        for edge in sorted({call.primary, *call.asked}):
            commitment = call.commitments.get(edge)
            if commitment is None:
                records.append({"edge": edge, "slot": call.slot, "reason": "withheld", "rows": []})
            elif commitment["outputs"] != call.accepted:
                wrong = differing_rows(call.answers[edge], accepted)
                rows = torch.stack([call.rows.sequences[wrong], call.rows.positions[wrong]], dim=1)  # (w, 2)
                records.append({"edge": edge, "slot": call.slot, "reason": "dissent",
                                "rows": rows[:MAX_ROWS_NAMED].tolist()})
                accused.add(edge)
    records.sort(key=lambda r: (r["slot"], r["edge"]))
    return records, rollbacks, accused


def _store(ctx: ChunkContext, work: Sequence[_Call], accepted: Mapping[tuple[int, int], torch.Tensor]) -> None:
    """The accepted outputs and every dissenting output (the evidence behind a record), by CID."""
    for call in work:
        ctx.store.put(rows_bytes(accepted[(call.layer, call.expert)]))
        if call.disputed:
            for edge, commitment in call.commitments.items():
                if commitment["outputs"] != call.accepted and edge in call.answers:
                    ctx.store.put(rows_bytes(call.answers[edge]))


def _record(call: _Call) -> CallRecord:
    return CallRecord(call.slot, call.rows.sequences, call.rows.positions, call.rows.produced, call.rows.inputs,
                      call.inputs, call.primary, call.fast, call.accepted, call.checked, list(call.replicas),
                      call.disputed, dict(sorted(call.commitments.items())))
