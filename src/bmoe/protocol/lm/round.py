"""One B-MoE round of a language model: the classifier's protocol, one task per layer and direction.

A language model's layer needs the layer below it, so a round is a sequence of ordinary ledger tasks over the
same batch of token sequences (the publisher's, by CID), each sealed in a block of its own as soon as it is decided
(as the ledger contract records them: one task a block):

- **forward, layer l** (a task of kind ``infer``, ``<kind>-RRRRRR-fL``): the validators run attention and the
  router and record the layer's activation (routing and the experts' input, by CID); every assigned edge
  computes its expert calls (slot ``l * N + j`` of the ledger's experts: one call is (layer, expert, the tokens
  routed to it)) and commits; each call is decided by the comparison and the acceptance rule, disputes and
  escalation included, exactly as a classifier's expert; the accepted outputs are mixed into the stream.
- the loss of the final stream, at the validators;
- **backward, layer l**, from the top (a task of kind ``train``, ``train-RRRRRR-bL``): the activation adds each
  routed slot's dL/d(output) (times a power of two, ``layers.gradient_scale``, so the answers are of order one);
  each edge's result is dL/d(input) of its calls, decided like any result and summed into the stream's gradient;
  the ``gate_update`` records the round's loss, the output gradients of the accepted calls by CID and the trusted
  part's CID (its AdamW step is taken, and recorded, in the last backward task, layer
  0, when every gradient is in); the edges then step their experts (AdamW, ``lm/optim.py``) and the updates are
  decided by digest (or by the comparison in force) and recorded as the experts' new CIDs.

Under PBFT the primary of the current view builds each task's block; when a view change votes it out before the
block is sealed, the task (not the round) is built again by the new primary, from the round's same computation.

The ledger needs nothing new: forward tasks are inference tasks, backward tasks are training tasks, and a layer
is a coordinate of the expert index. An inference round (validation, serving) is the forward tasks alone.

Must not know: how edges are reached (the :class:`~bmoe.protocol.edges.EdgeGateway`), what a round costs (the
:class:`~bmoe.protocol.measure.RoundObserver`), which edges are honest.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import torch

from bmoe.ledger.node import ConsensusStalled, ProposalRejected, Signer
from bmoe.ledger.transactions import Transaction
from bmoe.lm.payloads import check_batch, descaled, encode_batch, gradient_scale, scaled
from bmoe.moe.gate import Routing
from bmoe.protocol.edges import ResultWork, UpdateWork
from bmoe.protocol.lm.layers import (
    LayerPass,
    backpropagate,
    enter_layer,
    input_gradient,
    leave_layer,
    output_gradients,
)
from bmoe.protocol.lm.validator import LMValidator
from bmoe.protocol.measure import RoundObserver, RoundTimes, Traffic
from bmoe.protocol.round import RoundParticipants, assignments_of, escalate, submit_all, submit_answers
from bmoe.protocol.validator import Aggregate
from bmoe.storage import BlobStore

T = TypeVar("T")


@dataclass
class LMRoundOutcome:
    round: int
    kind: str  # train | infer
    loss: float | None  # cross-entropy, nats per token (None: an inference round without targets)
    calls: int  # expert calls decided (forward and backward)
    accepted: int  # of them, accepted
    misbehaviour: int
    counts: list[int]  # tokens routed to each slot in the forward tasks
    times: RoundTimes = field(default_factory=RoundTimes)
    traffic: Traffic = field(default_factory=Traffic)
    edge_seconds: float = 0.0  # per task the busiest edge's compute, summed over the (sequential) tasks
    edge_total_seconds: float = 0.0  # every edge's compute, summed: what the fleet pays
    block_bytes: int = 0


TASK_ID = re.compile(r"(?P<kind>train|infer)-(?P<round>\d{6,})-(?P<direction>[fb])(?P<layer>\d+)")


def lm_task(task_id: str) -> tuple[str, int, str, int] | None:
    """A task id of :func:`task_ids` read back: (kind, round, ``f`` or ``b``, layer); None for any other id."""
    found = TASK_ID.fullmatch(task_id)
    if found is None:
        return None
    return found["kind"], int(found["round"]), found["direction"], int(found["layer"])


def task_ids(round_index: int, layers: int, train: bool) -> list[str]:
    """The round's task ids in the order they run: forward layers up, then (training) backward layers down."""
    kind = "train" if train else "infer"
    forward = [f"{kind}-{round_index:06d}-f{layer}" for layer in range(layers)]
    backward = [f"train-{round_index:06d}-b{layer}" for layer in reversed(range(layers))] if train else []
    return forward + backward


def publish_lm_tasks(p: RoundParticipants, round_index: int, tokens: torch.Tensor, targets: torch.Tensor | None,
                     layers: int, train: bool) -> list[Transaction]:
    """The publisher's part: the batch stored by CID and one signed task per layer and direction (targets are
    stored when given, for training or for a validation loss)."""
    return sign_lm_tasks(p.publisher, p.store, round_index, tokens, targets, layers, train)


def sign_lm_tasks(publisher: Signer, store: BlobStore, round_index: int, tokens: torch.Tensor,
                  targets: torch.Tensor | None, layers: int, train: bool) -> list[Transaction]:
    """:func:`publish_lm_tasks` for a publisher of its own (a deployment's: ``bmoe lm train --cluster``)."""
    data_cid = store.put(encode_batch(tokens, targets))
    samples = int(tokens.numel())
    return [publisher.sign("task", {"task_id": task_id, "kind": "train" if _backward(task_id) else "infer",
                                    "data_cid": data_cid, "samples": samples, "round": round_index})
            for task_id in task_ids(round_index, layers, train)]


def _backward(task_id: str) -> bool:
    parsed = lm_task(task_id)
    return parsed is not None and parsed[2] == "b"


def run_lm_round(p: RoundParticipants, validator: LMValidator, round_index: int, tokens: torch.Tensor,
                 targets: torch.Tensor | None, train: bool, lr: float, tasks: list[Transaction] | None = None,
                 on_sealed: Callable[[], None] | None = None) -> LMRoundOutcome:
    """Run one round over ``tokens`` (B, T), sealing a block per task. Training needs ``targets``; with targets an
    inference round reports the loss too. A round that fails leaves nothing pending (the tasks sealed before it
    stay sealed, and the next round starts again at layer 0: stopped in a forward task, it trained nothing; in a
    backward task, the layers above have stepped their experts and the trusted part has not)."""
    config = validator.config
    check_batch(tokens, targets, config.vocab_size)
    if train and targets is None:
        raise ValueError("a training round needs targets")
    tasks = tasks if tasks is not None else publish_lm_tasks(p, round_index, tokens, targets,
                                                            config.num_hidden_layers, train)
    if p.observer is None:
        p.observer = RoundObserver(p.store)
    try:
        return _LMRound(p, validator, p.observer, round_index, train, lr, tasks, on_sealed).run(tokens, targets)
    except BaseException:
        p.node.discard_pending()
        p.resync_nonces()
        raise


@dataclass
class _LMRound:
    p: RoundParticipants
    validator: LMValidator
    watch: RoundObserver
    round_index: int
    train: bool
    lr: float
    tasks: list[Transaction]
    on_sealed: Callable[[], None] | None = None  # told after each task's block (the node's view is that block's)
    calls: int = 0
    accepted: int = 0
    misbehaviour: int = 0
    edge_seconds: float = 0.0
    edge_total_seconds: float = 0.0
    block_bytes: int = 0

    def run(self, tokens: torch.Tensor, targets: torch.Tensor | None) -> LMRoundOutcome:
        validator, config = self.validator, self.validator.config
        self.watch.begin()
        model = validator.current_model()
        if self.train:
            validator.zero_grad()
        with torch.set_grad_enabled(self.train):
            embedded = model.embed(tokens)  # (B, T, d)
        h, passes = embedded, []
        counts = [0] * config.num_slots
        for layer_index in range(config.num_hidden_layers):
            task = self.tasks[layer_index]
            layer = enter_layer(model, layer_index, h, self.train)
            outputs = self._sealed(functools.partial(self._forward_task, task, layer))
            h = leave_layer(layer, outputs, self.train)
            passes.append(layer)
            for slot, rows in layer.groups.items():
                counts[slot] = int(rows.numel())
        loss_value = None
        if targets is not None:
            loss, leaf = validator.loss(h, targets, self.train)
            loss_value = float(loss.item())
            self.watch.step("loss")
            if self.train:
                loss.backward()
                assert leaf.grad is not None
                self._backward(passes, embedded, leaf.grad, loss_value)
        self.watch.sealed(None, self.edge_seconds, self.edge_total_seconds)
        return LMRoundOutcome(self.round_index, "train" if self.train else "infer", loss_value, self.calls,
                              self.accepted, self.misbehaviour, counts, self.watch.times, self.watch.traffic,
                              self.edge_seconds, self.edge_total_seconds, self.block_bytes)

    def _proposer(self) -> LMValidator:
        """The validator building the block: the round's own, or under PBFT the current primary."""
        proposer = self.validator if self.p.primary is None else self.p.proposer()
        assert isinstance(proposer, LMValidator)
        return proposer

    def _forward_task(self, task: Transaction, layer: LayerPass) -> dict[int, torch.Tensor]:
        """One forward task's transactions, by the current proposer; the accepted results by slot."""
        self.p.node.submit(task)
        proposer = self._proposer()  # the accepted experts' mix, made once for the record and the stream
        return self._expert_calls(task, layer, None, lambda routing, groups, accepted: proposer.mixed(
            layer, accepted, self.train))

    def _sealed(self, build: Callable[[], T]) -> T:
        """Build a task's block (``build``: the task's transactions, by the current proposer) and seal it. When
        consensus does not seal it (a PBFT view change voted its proposer out), the task is built again by the new
        proposer, at most once per validator, as ``protocol/round.py`` rebuilds a round."""
        p = self.p
        for _ in range(max(1, len(p.validators))):
            counted = (self.calls, self.accepted, self.misbehaviour)
            try:
                built = build()
                self._seal()
                return built
            except ProposalRejected:
                p.node.discard_pending()
                p.resync_nonces()
                self.calls, self.accepted, self.misbehaviour = counted  # the rejected block's decisions count not
        why = p.refusals() if p.refusals is not None else ""
        raise ConsensusStalled(f"no proposer could seal a task of round {self.round_index}"
                               + (f"; validators refused: {why}" if why else ""))

    def _seal(self) -> None:
        """A task's block: each task is sealed when its calls (and, backward, its updates) are decided."""
        p = self.p
        p.store.sync()  # every object the block names durable before it is sealed
        self.watch.step("storage")
        p.node.seal(timestamp=self.round_index + 1, proposer=self._proposer().signer.identity)
        p.resync_nonces()
        if p.node.seals:
            self.block_bytes += p.node.last_seal.block_bytes
        if self.on_sealed is not None:
            self.on_sealed()
        self.watch.step("consensus")

    def _backward(self, passes: list[LayerPass], embedded: torch.Tensor, g_out: torch.Tensor, loss: float) -> None:
        """The backward tasks, top layer first; the trusted part's step is recorded in the last (layer 0)."""
        config = self.validator.config
        for position, layer in enumerate(reversed(passes)):
            task = self.tasks[config.num_hidden_layers + position]
            grads = output_gradients(layer, g_out)
            stepped: dict[str, object] = {}  # layer 0: the trusted part's step, taken once
            dx = self._sealed(functools.partial(self._backward_task, task, layer, grads, embedded, g_out, loss,
                                                stepped))
            if layer.layer != 0:  # its block's gate_cid is the current one: the gradient flows on once it is sealed
                g_out = backpropagate(layer, g_out, input_gradient(layer, dx))

    def _backward_task(self, task: Transaction, layer: LayerPass, grads: dict[int, torch.Tensor],
                       embedded: torch.Tensor, g_out: torch.Tensor, loss: float,
                       stepped: dict[str, object]) -> dict[int, torch.Tensor]:
        """One backward task's transactions, by the current proposer; the accepted dL/d(input) by slot."""
        p, proposer = self.p, self._proposer()
        p.node.submit(task)
        scale = gradient_scale(int(layer.x.shape[0]))
        dx = descaled(self._expert_calls(task, layer, scaled(grads, scale), proposer.summed), scale)
        if layer.layer == 0:
            gate_cid = self._trusted_step(layer, embedded, g_out, dx, stepped)
        else:
            gate_cid = p.node.pending_view().gate_cid
        gate_tx, stored = proposer.gate_update(task.payload["task_id"], loss, gate_cid,
                                               {slot: grads[slot] for slot in dx})
        p.node.submit(gate_tx)
        self.watch.step("loss")
        self._updates(task, stored)
        return dx

    def _trusted_step(self, layer: LayerPass, embedded: torch.Tensor, g_out: torch.Tensor,
                      dx: dict[int, torch.Tensor], stepped: dict[str, object]) -> str:
        """Layer 0's backward into the trusted part and its AdamW step: the new trusted object's CID. Its gradients
        accumulate once: a block rebuilt by another proposer reuses the step, which holds while the edges' accepted
        answers are the same (honest edges answer a task alike; else the round fails, nothing pending)."""
        if stepped:
            first = stepped["dx"]
            assert isinstance(first, dict)
            if first.keys() != dx.keys() or not all(torch.equal(first[s], dx[s]) for s in dx):
                raise ConsensusStalled(f"round {self.round_index}: the rebuilt last backward task's accepted answers "
                                       "differ from those its trusted part already stepped on")
            return str(stepped["gate_cid"])
        embedded.backward(backpropagate(layer, g_out, input_gradient(layer, dx)))
        stepped.update(dx=dx, gate_cid=self.validator.trusted_step(self.lr))
        return str(stepped["gate_cid"])

    def _expert_calls(self, task: Transaction, layer: LayerPass, grads: dict[int, torch.Tensor] | None,
                      aggregate: Aggregate | None) -> dict[int, torch.Tensor]:
        """One task's expert calls: the activation, the edges' commitments (disputes escalated), the decisions.
        The accepted results by slot."""
        p, validator, watch = self.p, self._proposer(), self.watch
        task_id = task.payload["task_id"]
        activation = validator.activation(task_id, layer, grads)
        p.node.submit(activation)
        watch.step("gate")
        state = p.node.pending_view()
        slots = sorted(layer.groups)
        work = ResultWork(self.round_index, task_id, task.payload["data_cid"], activation.payload["activation_cid"],
                          assignments_of(state, state.tasks[task_id], slots), list(state.expert_cids),
                          train=self.train)
        watch.work_out(work)
        submit_answers(p, validator, watch, task_id, "result", p.gateway.results(work))
        escalate(p, validator, watch, task_id, "result", slots,
                 lambda extra: dataclasses.replace(work, assignments=extra, escalation=True))
        watch.step("compute")
        routing = Routing(layer.routing.experts, layer.routing.weights.detach(), layer.routing.logits.detach())
        decided = validator.decide(task_id, "result", {s: int(rows.numel()) for s, rows in layer.groups.items()},
                                   routing, layer.groups, aggregate)
        submit_all(p, decided.transactions)
        outputs = {s: d.output for s, d in decided.decisions.items() if d.output is not None}
        self.calls += len(slots)
        self.accepted += len(outputs)
        self.misbehaviour += decided.accusations
        watch.step("verify")
        if grads is None or not self.train:
            self._edge_time()
        return outputs

    def _updates(self, task: Transaction, stored: dict[int, tuple[str, torch.Tensor]]) -> None:
        """Step 5 of a backward task: the edges step their experts; each update is decided."""
        p, validator, watch = self.p, self._proposer(), self.watch
        task_id = task.payload["task_id"]
        state = p.node.pending_view()
        work = UpdateWork(self.round_index, task_id, {s: cid for s, (cid, _) in stored.items()},
                          assignments_of(state, state.tasks[task_id], sorted(stored)), list(state.expert_cids),
                          self.lr)
        watch.work_out(work)
        submit_answers(p, validator, watch, task_id, "update", p.gateway.updates(work))
        activation_cid = state.tasks[task_id].activation_cid or ""
        escalate(p, validator, watch, task_id, "update", sorted(stored),
                 lambda extra: dataclasses.replace(work, assignments=extra, task_cid=task.payload["data_cid"],
                                                   activation_cid=activation_cid))
        if stored:
            decided = validator.decide(task_id, "update", {s: int(g.shape[0]) for s, (_, g) in stored.items()})
            submit_all(p, decided.transactions)
            self.misbehaviour += decided.accusations
        watch.step("update")
        self._edge_time()

    def _edge_time(self) -> None:
        """A task's edge compute (its phases), added to the round's: tasks run one after another."""
        self.edge_seconds += self.p.gateway.busiest_seconds()
        self.edge_total_seconds += self.p.gateway.total_seconds()

