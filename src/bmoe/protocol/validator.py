"""The validators' work in a round: the gate, verification, aggregation, loss and gate update.

The validator holds the gate by CID. It evaluates the gate and records the top-K activation
(step 1), decides every activated expert by the acceptance rule over the recorded commitments
and aggregates the accepted results (step 3), and in training computes the loss, the gate's SGD
step and the gradients the edges need (step 4), then decides the experts' updates (step 5).
The rules themselves are ``verify/phase.py``'s, the same functions the ledger checks with: a decision
the ledger would not derive is refused there.

Edges commit first and upload on demand: after a phase's answers arrive the validator names the
objects it needs (:meth:`Validator.needed_objects`: every committed object not yet stored, each once,
with the edges that committed it, in the order to ask them), the round has them uploaded, and only
answers whose objects are stored are recorded. With r replicas agreeing that is one upload, not r; the
bytes are checked against the committed digests where they are read (``_verified_object``, ``answers_of``).

Nothing non-finite is sealed. Edges that agree bit for bit on a non-finite result or update
computed the same overflow: that is the model diverging (or inputs too large for float32), not
misbehaviour, so the round fails with :class:`RoundDiverged` and nobody is accused; this holds for any
group the rule accepts, even of one edge. Only under the unverified ``sole`` rule are an edge's
non-finite bytes malformed, as any bad bytes are. (The price: edges that win the vote with non-finite
bytes stall the round instead of being accused; with an honest majority they cannot win it.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from bmoe.edge.profiles import DEFAULT, NumericProfile, get_profile
from bmoe.ledger.node import LedgerNode, Signer
from bmoe.ledger.state import LedgerState, TaskState
from bmoe.ledger.transactions import Transaction
from bmoe.moe.dispatch import activation_counts, combine
from bmoe.moe.gate import LinearGate, Routing
from bmoe.moe.payloads import NonFiniteValue, PayloadError, decode_result, encode_result, require_finite
from bmoe.protocol.gate_step import (
    DIVERGED_HINT,
    RoundDiverged,
    evaluate_gate,
    load_gate,
    logits_under,
    require_finite_round,
    update_gate,
)
from bmoe.protocol.grouped_check import accepted_object, diverged, regroup
from bmoe.storage import BlobStore, StorageError, deserialize_tensors
from bmoe.verify.acceptance import Verdict
from bmoe.verify.comparison import Comparison
from bmoe.verify.phase import (
    PHASES,
    Accusation,
    build_accusations,
    build_decision,
    build_grouped_decision,
    grouped_verdict,
    misbehaviour_records,
    supporter_cids,
    verdict_of,
)
from bmoe.verify.phase import Decision as PhaseDecision

# (routing, groups, accepted outputs) -> the aggregate a result phase records
Aggregate = Callable[[Routing, dict[int, torch.Tensor], dict[int, torch.Tensor]], torch.Tensor]


@dataclass
class Decision:
    """The outcome of one (task, expert, phase)."""

    verdict: Verdict
    status: str  # accepted | no_quorum | malformed
    output: torch.Tensor | None = None  # the accepted result, for phase "result"


@dataclass
class PhaseDecisions:
    """Every expert's decision in one phase of a task, and the transactions that record them."""

    decisions: dict[int, Decision]
    transactions: list[Transaction]
    logits: torch.Tensor | None = None  # phase "result": the aggregated MoE output (B, C)

    @property
    def accusations(self) -> int:
        return len(self.transactions) - 1


class Validator:
    def __init__(self, signer: Signer, node: LedgerNode, store: BlobStore, input_dim: int,
                 num_experts: int, top_k: int, num_classes: int, profile: NumericProfile | None = None) -> None:
        self.signer = signer
        self.node = node
        self.store = store
        self.input_dim = input_dim
        self.num_experts = num_experts
        self.top_k = top_k
        self.num_classes = num_classes
        self._gate: tuple[str, LinearGate] | None = None
        self.profile = profile if profile is not None else get_profile(DEFAULT)  # this validator's numerics

    def gate(self, cid: str) -> LinearGate:
        if self._gate is None or self._gate[0] != cid:
            self._gate = (cid, load_gate(deserialize_tensors(self.store.get(cid))[0], self.input_dim,
                                         self.num_experts))
        return self._gate[1]

    def activate(self, task_id: str, x: torch.Tensor, train: bool) -> tuple[
            Routing, dict[int, torch.Tensor], Transaction]:
        """Step 1: gate, top-K, the activation recorded by CID with per-expert counts."""
        gate_cid = self.node.pending_view().gate_cid
        activation = evaluate_gate(self.gate(gate_cid), x, self.top_k, self.num_experts, train,
                                   logits_under(self.profile))
        activation_cid = self.store.put(activation.data)
        tx = self.signer.sign("activation", {
            "task_id": task_id, "gate_cid": gate_cid, "activation_cid": activation_cid,
            "counts": activation_counts(activation.routing.experts, self.num_experts),
        })
        return activation.routing, activation.groups, tx

    def decide(self, task_id: str, phase: str, rows: dict[int, int], routing: Routing | None = None,
               groups: dict[int, torch.Tensor] | None = None, aggregate: Aggregate | None = None) -> PhaseDecisions:
        """Steps 3 and 5: apply the acceptance rule to what the ledger recorded, for every expert
        in ``rows`` (expert -> number of routed samples); one acceptance transaction, then one
        misbehaviour transaction per accused edge. In phase "result" (``routing`` and ``groups``
        given) the accepted results are aggregated (by ``aggregate``, by default :meth:`aggregate`, the
        routing's weighted mix) and the aggregate is recorded by CID."""
        state = self.node.pending_view()
        task = state.tasks[task_id]
        decisions: dict[int, Decision] = {}
        entries = []
        accusations = []
        for expert, n_rows in sorted(rows.items()):
            decide = self._decide_grouped if state.comparison.records_groups else self._decide_exact
            decision, verdict, output, found = decide(state, task, phase, expert, n_rows)
            decisions[expert] = Decision(verdict, decision.status, output)
            entries.append(decision.to_dict())
            accusations += found
        payload: dict[str, object] = {"task_id": task_id, "decisions": entries}
        logits = None
        if phase == "result":
            if routing is None or groups is None:
                raise ValueError("phase 'result' needs the routing and groups to aggregate")
            outputs = {e: d.output for e, d in decisions.items() if d.output is not None}
            logits = (aggregate or self.aggregate)(routing, groups, outputs).detach()  # (B, C)
            require_finite_round("the aggregated MoE output", logits, "the accepted results overflow float32")
            payload["output_cid"] = self.store.put(encode_result(logits))
        txs = [self.signer.sign(PHASES[phase].decision_kind, payload)]
        for edge, records in misbehaviour_records(accusations).items():
            txs.append(self.signer.sign("misbehaviour", {"task_id": task_id, "phase": phase, "edge": edge,
                                                         "records": records}))
        return PhaseDecisions(decisions, txs, logits)

    def dispute(self, task_id: str, phase: str, experts: list[int]) -> Transaction | None:
        """After a sampled phase's commitments: one ``dispute`` escalating every expert of ``experts``
        whose sample is split or incomplete to every edge, or None when every sample is unanimous (or
        the policy has no samples). Under a grouping comparison the sample's groups are its evidence."""
        state = self.node.pending_view()
        task = state.tasks[task_id]
        entries: list[dict[str, object]] = []
        for expert in sorted(experts):
            groups = None
            comparison = state.comparison
            if comparison.records_groups and state.assignment.escalates and expert not in task.escalated:
                groups = regroup(self.store, comparison, state, task, phase, expert).edges()
            if state.undisputed_split(expert, task, phase, groups) is not None:
                entry: dict[str, object] = {"expert": expert}
                if groups is not None:
                    entry["groups"] = [list(group) for group in groups]
                entries.append(entry)
        if not entries:
            return None
        return self.signer.sign("dispute", {"task_id": task_id, "phase": phase, "disputes": entries})

    def needed_objects(self, answers: Sequence[Transaction]) -> dict[str, list[str]]:
        """CID -> the edges that committed it, in the order to ask them, for every object the ``answers``
        (commitments or expert updates of one phase) name that the store does not hold yet.

        Every committed object is needed once: the accepted group's (the CID its decision records: edges
        that agree commit one CID, so one upload serves them all, whoever sends it), each dissenter's (the
        evidence behind its record), and under a comparison that records groups every answer (the groups
        are derived from the bytes). The i-th object is asked first of the (i mod n)-th of its n edges (in
        the answers' order), so the uploads of agreeing edges are spread over them; when that edge does not
        deliver, the next one is asked. Who uploads never changes what is recorded: the bytes are the CID's."""
        holders: dict[str, list[str]] = {}
        for tx in answers:
            for cid in committed_cids(tx):
                edges = holders.setdefault(cid, [])
                if tx.sender not in edges:
                    edges.append(tx.sender)
        needed = [(cid, edges) for cid, edges in holders.items() if not self._stored(cid)]
        return {cid: edges[i % len(edges):] + edges[:i % len(edges)] for i, (cid, edges) in enumerate(needed)}

    def stored(self, cids: Iterable[str]) -> set[str]:
        """Those of ``cids`` the store holds."""
        return {cid for cid in cids if self._stored(cid)}

    def _stored(self, cid: str) -> bool:
        try:
            return self.store.has(cid)
        except (StorageError, ValueError):
            return False

    def _decide_exact(self, state: LedgerState, task: TaskState, phase: str, expert: int, n_rows: int) -> tuple[
            PhaseDecision, Verdict, torch.Tensor | None, list[Accusation]]:
        """Grouped by digest: the accepted bytes are the first supporter's that have the group's digest."""
        committed = task.commitments[phase].get(expert, {})
        verdict = verdict_of(state.rule, committed, state.assigned_edges(expert, task))
        output, valid_cid = None, None
        if verdict.digest is not None:
            cid, data = self._verified_object(state.comparison, verdict.digest, supporter_cids(verdict, committed))
            if data is not None:
                try:
                    decoded = self.check_answer(state, phase, expert, cid, data)
                    output = decode_agreed(phase, data, n_rows, self.num_classes, len(verdict.supporters),
                                           verified=state.rule.name != "sole", tensors=decoded)
                    valid_cid = cid
                except RoundDiverged:  # a PayloadError too, but the round fails: nobody is accused
                    raise
                except PayloadError:
                    pass
        decision = build_decision(expert, verdict, valid_cid, committed)
        return decision, verdict, output, build_accusations(decision, verdict, committed)

    def _decide_grouped(self, state: LedgerState, task: TaskState, phase: str, expert: int, n_rows: int) -> tuple[
            PhaseDecision, Verdict, torch.Tensor | None, list[Accusation]]:
        """Grouped within the bound from the answers' bytes (the comparison's ``group``); the accepted value
        (under ``tolerance`` the first group's element-wise median) is stored under its own CID."""
        comparison = state.comparison
        committed = task.commitments[phase].get(expert, {})
        grouping = regroup(self.store, comparison, state, task, phase, expert)
        stop = diverged(state, task, grouping, expert, phase)
        if stop is not None:
            raise RoundDiverged(f"{stop}; {DIVERGED_HINT}; nothing is sealed")
        groups = grouping.edges()
        verdict = grouped_verdict(state.rule, committed, state.assigned_edges(expert, task), groups)
        output, accepted, malformed = None, None, None
        if verdict.digest is not None:
            winner = grouping.groups[0]
            if winner.valid:
                data = accepted_object(comparison, grouping, committed, phase)
                output = decode_agreed(phase, data, n_rows, self.num_classes, len(verdict.supporters), verified=True)
                accepted = (comparison.key(data), self.store.put(data))
            else:  # identical bytes that are not a valid answer (non-finite ones meeting the rule raised above)
                malformed = winner.digest
        decision = build_grouped_decision(expert, verdict, groups, accepted, malformed)
        return decision, verdict, output, build_accusations(decision, verdict, committed, grouping.distances)

    def check_answer(self, state: LedgerState, phase: str, expert: int, cid: str,
                     data: bytes) -> dict[str, torch.Tensor] | None:
        """PayloadError when ``data`` (stored as ``cid``) cannot be an answer of ``phase`` for ``expert`` beyond what
        ``decode_agreed`` checks (a kind of expert whose objects carry more than weights checks their form here);
        the tensors of ``data`` when it decoded them (``decode_agreed`` reads them instead of decoding the bytes
        again), else None."""
        return None

    def _verified_object(self, comparison: Comparison, digest: str, cids: list[str]) -> tuple[
            str | None, bytes | None]:
        """The first of the supporters' CIDs whose stored bytes have ``digest`` under the comparison in
        force, with those bytes: an edge that repeats the majority's digest under a CID of other (or no)
        bytes cannot make its CID the accepted one. (None, None) when no supporter's bytes check out."""
        for cid in cids:
            try:
                data = self.store.get(cid)
            except StorageError:
                continue
            if comparison.matches(data, digest):
                return cid, data
        return None, None

    def aggregate(self, routing: Routing, groups: dict[int, torch.Tensor],
                  outputs: dict[int, torch.Tensor]) -> torch.Tensor:
        """The MoE output (B, C) from the accepted results, renormalised over accepted experts."""
        return combine(routing.experts, routing.weights, outputs, groups, self.num_classes)

    def loss_and_gate_update(self, task_id: str, routing: Routing, groups: dict[int, torch.Tensor],
                             outputs: dict[int, torch.Tensor], y: torch.Tensor, lr: float,
                             balance: float) -> tuple[float, dict[int, tuple[str, torch.Tensor]], Transaction]:
        """Step 4: loss, the gate's SGD step and dL/d(output) for each accepted expert, stored by CID."""
        with self.profile.computing():
            update = update_gate(self.gate(self.node.pending_view().gate_cid), routing, groups, outputs, y,
                                 self.num_classes, lr, balance)
        gate_cid = self.store.put(update.gate_data)
        gradients = {e: (self.store.put(data), grad) for e, (data, grad) in update.gradients.items()}
        tx = self.signer.sign("gate_update", {
            "task_id": task_id, "loss": update.loss, "gate_cid": gate_cid,
            "gradient_cids": {str(e): cid for e, (cid, _) in gradients.items()},
        })
        return update.loss, gradients, tx


def committed_entries(tx: Transaction) -> list[dict[str, Any]]:
    """The (expert, digest, CID) entries an edge's answer (a commitment or an expert update) commits, in order."""
    entries = next((phase.commit_entries for phase in PHASES.values() if phase.commit_kind == tx.kind), None)
    return list(tx.payload.get(entries, [])) if entries else []


def committed_cids(tx: Transaction) -> list[str]:
    """The CIDs an edge's answer (a commitment or an expert update) commits, in entry order."""
    return [str(entry["cid"]) for entry in committed_entries(tx)]


def decode_agreed(phase: str, data: bytes, rows: int, classes: int, supporters: int,
                   verified: bool, tensors: dict[str, torch.Tensor] | None = None) -> torch.Tensor | None:
    """The agreed result (phase "result") or None (phase "update", whose weights are only checked; ``tensors``:
    those of ``data`` when the caller decoded them already).

    PayloadError for bytes that are not a finite result or update of the right form. Non-finite
    values in a group the acceptance rule accepted (``verified``: any rule but ``sole``, even a group of
    one edge, e.g. M = 1) raise :class:`RoundDiverged` instead: the agreed computation overflowed, so the
    round fails and no edge is accused. Under ``sole`` a lone edge's bytes are unverified, and
    non-finite ones are malformed like any bad bytes."""
    try:
        if phase == "result":
            return decode_result(data, rows, classes)
        for name, weights in sorted((tensors if tensors is not None else deserialize_tensors(data)[0]).items()):
            require_finite(f"updated weights {name}", weights)
        return None
    except NonFiniteValue as err:
        if verified:
            raise RoundDiverged(f"round diverged: {supporters} edges agree on a non-finite {phase} ({err}); "
                                f"{DIVERGED_HINT}; nothing is sealed") from None
        raise
    except PayloadError:
        raise
    except Exception as err:  # corrupt bytes from an untrusted edge are data, not a crash
        raise PayloadError(f"{phase}: not a safetensors object ({err})") from None
