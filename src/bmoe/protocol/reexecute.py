"""Re-execution: a validator accepts a proposed block only if re-running it gives what it claims.

From the previous state, every transaction goes through the ledger's state machine (signatures,
senders, nonces, the acceptance rule over the recorded commitments, misbehaviour evidence), and the
tensor rules are recomputed from the stored objects and checked by the comparison in force
(``protocol/comparisons/``): the gate's top-K activation, the validity of
accepted (and malformed-marked) results, the aggregated MoE output, the loss, the gate update and
the gradients sent to the edges. Under a comparison that records groups, every recorded group,
accepted value (the group's median) and dissenter's distance is re-derived from the committed answers
(``protocol/grouped_check.py``). Finally the block's state root must equal the replayed state's.
The first difference is named: ``block 12: transaction 5 (acceptance): output_cid differs ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bmoe.edge.profiles import DEFAULT, NumericProfile, get_profile
from bmoe.ledger.blocks import Block, block_hash
from bmoe.ledger.errors import InvalidBlock, InvalidTransaction
from bmoe.ledger.state import LedgerState, apply_transaction, begin_block, finish_block, state_root
from bmoe.ledger.transactions import Transaction
from bmoe.moe.dispatch import combine
from bmoe.moe.gate import LinearGate, Routing
from bmoe.moe.payloads import PayloadError, decode_result, decode_task
from bmoe.protocol.comparisons import tensor_checks
from bmoe.protocol.comparisons.checks import Differs, require_same, require_within
from bmoe.protocol.gate_step import RoundDiverged, evaluate_gate, load_gate, logits_under, update_gate
from bmoe.protocol.grouped_check import GroupedDecisions
from bmoe.protocol.validator import decode_agreed
from bmoe.storage import BlobStore, StorageError, deserialize_tensors
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
                require_within(grouped.transaction_error(working, tx))  # first: names the group or value that differs
                self._tensor_rules_after(working, tx, tasks)
            except InvalidTransaction as err:
                raise InvalidBlock(height, f"{where}: {err.reason}") from None
            except (StorageError, PayloadError) as err:
                raise InvalidBlock(height, f"{where}: {err}") from None
            except Differs as err:
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
                raise Differs("gate update for a task without a training activation")
            with self.profile.computing():
                update = update_gate(ctx.gate, ctx.routing, ctx.groups, ctx.outputs, ctx.y, self.num_classes,
                                     float(state.genesis["lr"]), float(state.genesis["balance"]))  # type: ignore[index]
            tensor_checks(state.comparison).check_gate_update(self.store, update, payload)

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
            ctx.routing, ctx.groups = tensor_checks(state.comparison).check_activation(  # routes the round
                self.store, payload["activation_cid"], activation, len(state.expert_cids))
        elif tx.kind in ("acceptance", "update_acceptance"):
            phase = "result" if tx.kind == "acceptance" else "update"
            ctx = tasks[payload["task_id"]]
            task = state.tasks[payload["task_id"]]
            for entry in payload["decisions"]:
                expert, rows = entry["expert"], int(ctx.groups[entry["expert"]].numel())
                verdict = task.verdicts[phase][expert]
                if entry["status"] == "accepted":
                    data = self.store.get(entry["cid"])
                    require_same(f"expert {expert}: digest of the accepted CID's bytes", state.comparison.key(data),
                                 entry["digest"])
                    if not self._agreed_valid(state, phase, expert, data, rows, len(verdict.supporters)):
                        raise Differs(f"expert {expert}: the accepted {phase} is not a valid {phase}")
                    if phase == "result":
                        ctx.outputs[expert] = decode_result(data, rows, self.num_classes)
                elif entry["status"] == "malformed":
                    committed = task.commitments[phase][expert]
                    valid = self._first_valid(state, phase, expert, supporter_cids(verdict, committed),
                                              entry["digest"], rows, len(verdict.supporters))
                    if build_decision(expert, verdict, valid, committed).status != "malformed":
                        raise Differs(f"expert {expert}: a valid {phase} is marked malformed")
            if phase == "result":
                assert ctx.routing is not None
                logits = combine(ctx.routing.experts, ctx.routing.weights, ctx.outputs, ctx.groups,
                                 self.num_classes).detach()
                tensor_checks(state.comparison).check_output(self.store, payload["output_cid"], logits)

    def _agreed_valid(self, state: LedgerState, phase: str, expert: int, data: bytes, rows: int,
                      supporters: int) -> bool:
        """Whether the agreed bytes are a valid ``phase`` object, judged as the proposer must judge them."""
        try:
            decode_agreed(phase, data, rows, self.num_classes, supporters, verified=state.rule.name != "sole")
        except RoundDiverged:
            raise Differs(f"expert {expert}: the agreed {phase} is non-finite: the round must fail, "
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
