"""Re-execution: a validator accepts a proposed block only if re-running it gives what it claims.

From the previous state, every transaction goes through the ledger's state machine (signatures,
senders, nonces, the acceptance rule over the recorded commitments, misbehaviour evidence), and the
tensor rules are recomputed from the stored objects: the gate's top-K activation, the validity of
accepted (and malformed-marked) results, the aggregated MoE output, the loss, the gate update and
the gradients sent to the edges. Under a comparison that records groups, every recorded group,
accepted value (the group's median) and dissenter's distance is re-derived from the committed answers
(``protocol/grouped_check.py``). Finally the block's state root must equal the replayed state's.
The first difference is named: ``block 12: transaction 5 (acceptance): output_cid differs ...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from bmoe.edge.profiles import DEFAULT, NumericProfile, get_profile
from bmoe.ledger.blocks import Block, block_hash
from bmoe.ledger.errors import InvalidBlock, InvalidTransaction
from bmoe.ledger.state import LedgerState, apply_transaction, begin_block, finish_block, state_root
from bmoe.ledger.transactions import Transaction
from bmoe.moe.dispatch import combine, routed_samples
from bmoe.moe.gate import LinearGate, Routing
from bmoe.moe.payloads import (
    PayloadError,
    decode_activation,
    decode_gradient,
    decode_result,
    decode_task,
    encode_result,
)
from bmoe.protocol.gate_step import (
    GateUpdate,
    RoundDiverged,
    evaluate_gate,
    load_gate,
    logits_under,
    update_gate,
)
from bmoe.protocol.grouped_check import GroupedDecisions
from bmoe.protocol.replica_checks import activation_error, loss_error, result_error, weights_error
from bmoe.protocol.validator import decode_agreed
from bmoe.storage import BlobStore, StorageError, cid_of, deserialize_tensors
from bmoe.verify.comparison import Tolerance
from bmoe.verify.phase import build_decision, supporter_cids


@dataclass
class _TaskContext:
    x: torch.Tensor
    y: torch.Tensor | None
    train: bool
    gate: LinearGate | None = None
    routing: Routing | None = None
    groups: dict[int, torch.Tensor] = field(default_factory=dict)
    outputs: dict[int, torch.Tensor] = field(default_factory=dict)


class Reexecutor:
    """Checks blocks against the objects in ``store``; the model's shapes come from the genesis."""

    def __init__(self, store: BlobStore, input_dim: int, num_classes: int,
                 profile: NumericProfile | None = None) -> None:
        self.store = store
        self.input_dim = input_dim
        self.num_classes = num_classes
        self.profile = profile if profile is not None else get_profile(DEFAULT)  # this replica's numerics

    def check(self, state: LedgerState, block: Block) -> LedgerState:
        """The state after ``block``, or InvalidBlock naming the first thing that differs."""
        height = block.header.height
        if height != state.height + 1:
            raise InvalidBlock(height, f"expected height {state.height + 1}")
        working = begin_block(state)
        tasks: dict[str, _TaskContext] = {}
        grouped = GroupedDecisions(self.store)
        for index, tx in enumerate(block.transactions):
            where = f"transaction {index} ({tx.kind})"
            try:
                self._tensor_rules_before(working, tx, tasks)
                apply_transaction(working, tx)
                _within(grouped.transaction_error(working, tx))  # first: it names the group or value that differs
                self._tensor_rules_after(working, tx, tasks)
            except InvalidTransaction as err:
                raise InvalidBlock(height, f"{where}: {err.reason}") from None
            except (StorageError, PayloadError) as err:
                raise InvalidBlock(height, f"{where}: {err}") from None
            except _Differs as err:
                raise InvalidBlock(height, f"{where}: {err}") from None
        finish_block(working, height)
        if block.header.state_root != state_root(working):
            raise InvalidBlock(height, "state root differs from the re-executed state")
        working.head = block_hash(block)
        return working

    # Checks that need the state before the transaction (the gate before its update).
    def _tensor_rules_before(self, state: LedgerState, tx: Transaction, tasks: dict[str, _TaskContext]) -> None:
        payload = tx.payload
        if tx.kind == "gate_update" and payload.get("task_id") in tasks:
            ctx = tasks[payload["task_id"]]
            if ctx.gate is None or ctx.routing is None or ctx.y is None:
                raise _Differs("gate update for a task without a training activation")
            with self.profile.computing():
                update = update_gate(ctx.gate, ctx.routing, ctx.groups, ctx.outputs, ctx.y, self.num_classes,
                                     float(state.genesis["lr"]), float(state.genesis["balance"]))  # type: ignore[index]
            comparison = state.comparison
            if isinstance(comparison, Tolerance):
                _within(tolerant_gate_update(self.store, update, payload, comparison))
                return
            _same("loss", update.loss, payload.get("loss"))
            _same("gate_cid", cid_of(update.gate_data), payload.get("gate_cid"))
            expected = {str(e): cid_of(data) for e, (data, _) in update.gradients.items()}
            _same("gradient_cids", expected, payload.get("gradient_cids"))

    # Checks on what the transaction just recorded.
    def _tensor_rules_after(self, state: LedgerState, tx: Transaction, tasks: dict[str, _TaskContext]) -> None:
        payload = tx.payload
        if tx.kind == "task":
            x, y = decode_task(self.store.get(payload["data_cid"]))
            tasks[payload["task_id"]] = _TaskContext(x, y, payload["kind"] == "train")
        elif tx.kind == "activation":
            ctx = tasks[payload["task_id"]]
            weights = deserialize_tensors(self.store.get(payload["gate_cid"]))[0]
            ctx.gate = load_gate(weights, self.input_dim, len(state.expert_cids))
            top_k = int(state.genesis["top_k"])  # type: ignore[index]
            activation = evaluate_gate(ctx.gate, ctx.x, top_k, len(state.expert_cids), ctx.train,
                                       logits_under(self.profile))
            comparison = state.comparison
            if isinstance(comparison, Tolerance):  # the recorded choice, checked within the bound, routes the round
                ctx.routing, ctx.groups = tolerant_activation(self.store.get(payload["activation_cid"]),
                                                              activation.routing, len(state.expert_cids), comparison)
                return
            _same("activation_cid", cid_of(activation.data), payload["activation_cid"])
            ctx.routing, ctx.groups = activation.routing, activation.groups
        elif tx.kind in ("acceptance", "update_acceptance"):
            phase = "result" if tx.kind == "acceptance" else "update"
            ctx = tasks[payload["task_id"]]
            task = state.tasks[payload["task_id"]]
            for entry in payload["decisions"]:
                expert, rows = entry["expert"], int(ctx.groups[entry["expert"]].numel())
                verdict = task.verdicts[phase][expert]
                if entry["status"] == "accepted":
                    data = self.store.get(entry["cid"])
                    _same(f"expert {expert}: digest of the accepted CID's bytes", state.comparison.key(data),
                          entry["digest"])
                    if not self._agreed_valid(state, phase, expert, data, rows, len(verdict.supporters)):
                        raise _Differs(f"expert {expert}: the accepted {phase} is not a valid {phase}")
                    if phase == "result":
                        ctx.outputs[expert] = decode_result(data, rows, self.num_classes)
                elif entry["status"] == "malformed":
                    committed = task.commitments[phase][expert]
                    valid = self._first_valid(state, phase, expert, supporter_cids(verdict, committed),
                                              entry["digest"], rows, len(verdict.supporters))
                    if build_decision(expert, verdict, valid, committed).status != "malformed":
                        raise _Differs(f"expert {expert}: a valid {phase} is marked malformed")
            if phase == "result":
                assert ctx.routing is not None
                logits = combine(ctx.routing.experts, ctx.routing.weights, ctx.outputs, ctx.groups,
                                 self.num_classes).detach()
                comparison = state.comparison
                if isinstance(comparison, Tolerance):
                    recorded = decode_result(self.store.get(payload["output_cid"]), *logits.shape)
                    _within(result_error("the recorded MoE output", recorded, logits, comparison))
                    return
                _same("output_cid", cid_of(encode_result(logits)), payload["output_cid"])

    def _agreed_valid(self, state: LedgerState, phase: str, expert: int, data: bytes, rows: int,
                      supporters: int) -> bool:
        """Whether the agreed bytes are a valid ``phase`` object, judged as the proposer must judge them."""
        try:
            decode_agreed(phase, data, rows, self.num_classes, supporters, verified=state.rule.name != "sole")
        except RoundDiverged:
            raise _Differs(f"expert {expert}: the agreed {phase} is non-finite: the round must fail, "
                           "not seal") from None
        except PayloadError:
            return False
        return True

    def _first_valid(self, state: LedgerState, phase: str, expert: int, cids: list[str], digest: str, rows: int,
                     supporters: int) -> str | None:
        """The first of ``cids`` whose stored bytes (when present) have ``digest`` and are a valid ``phase`` object."""
        for cid in cids:
            data = self.store.get(cid) if self.store.has(cid) else None
            if data is not None and state.comparison.matches(data, digest) and self._agreed_valid(
                    state, phase, expert, data, rows, supporters):
                return cid
        return None


class _Differs(Exception):
    """A recomputed value differs from the block's."""


def tolerant_activation(recorded: bytes, replica: Routing, num_experts: int, comparison: Tolerance) -> tuple[
        Routing, dict[int, torch.Tensor]]:
    """The recorded activation, checked against the replica's gate within the bound, as the routing of
    the round: its experts, and weights recomputed from the replica's logits (attached to the gate)."""
    experts, weights = decode_activation(recorded)
    _within(activation_error(experts, weights, replica.logits.detach(), comparison))
    chosen = torch.softmax(replica.logits.gather(1, experts.long()), dim=1)  # (B, K), on the gate's graph
    return Routing(experts.long(), chosen, replica.logits), routed_samples(experts.long(), num_experts)


def tolerant_gate_update(store: BlobStore, update: GateUpdate, payload: Mapping[str, Any],
                         comparison: Tolerance) -> str | None:
    """Why the recorded loss, gate and gradients are not the replica's within the bounds, or None."""
    found = loss_error(float(payload["loss"]), update.loss, comparison)
    if found is None:
        recorded_gate = deserialize_tensors(store.get(payload["gate_cid"]))[0]
        found = weights_error("the recorded gate", recorded_gate, deserialize_tensors(update.gate_data)[0], comparison)
    if found is None and set(payload["gradient_cids"]) != {str(e) for e in update.gradients}:
        found = "gradient_cids: not the accepted experts"
    for expert, (_, grad) in sorted(update.gradients.items()):
        if found is None:
            recorded = decode_gradient(store.get(payload["gradient_cids"][str(expert)]))
            found = result_error(f"the recorded dL/d(output) of expert {expert}", recorded, grad, comparison)
    return found


def _within(reason: str | None) -> None:
    if reason is not None:
        raise _Differs(reason)


def _same(name: str, recomputed: object, claimed: object) -> None:
    if recomputed != claimed:
        raise _Differs(f"{name} differs from the re-executed value ({_short(claimed)} claimed, "
                       f"{_short(recomputed)} recomputed)")


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
