"""Replaying a language model's round: recompute everything the validators recorded and compare it by CID.

The validators' part of a round is a pure function of stored objects: the trusted part (``gate_cid``), the batch
(the tasks' ``data_cid``) and the accepted expert results (each acceptance's CIDs). Replaying a block's
transactions in order with the layer functions the validators use (``protocol/lm/layers.py``) gives, bit for bit
on the same torch build, every layer's activation, every aggregate (``output_cid``), the loss, every output
gradient sent to the edges and the trusted part after its AdamW step; :func:`lm_block_check` names the first that
differs (``bmoe audit`` on a language model's run, docs/lm.md). The learning rate of a round is the schedule's,
which the settings whose hash the genesis records fix (``lr_of``).

Must not know: edges, the disk layout of a run, click.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from bmoe.ledger.blocks import Block
from bmoe.ledger.state import LedgerState
from bmoe.ledger.transactions import Transaction
from bmoe.lm.model import MoETransformer
from bmoe.lm.optim import adamw_step
from bmoe.lm.payloads import decode_batch, descaled, encode_layer_activation, gradient_scale, scaled
from bmoe.moe.payloads import PayloadError, decode_result, encode_gradient, encode_result
from bmoe.protocol.lm.layers import (
    LayerPass,
    backpropagate,
    enter_layer,
    input_gradient,
    leave_layer,
    output_gradients,
    recorded_mix,
    summed_rows,
)
from bmoe.protocol.lm.round import lm_task
from bmoe.protocol.lm.trusted import decode_trusted, encode_trusted, is_expert_parameter, load_trusted
from bmoe.storage import BlobStore, StorageError, cid_of


class ReplayDiffers(Exception):
    """What the replay computed is not what the block records."""


@dataclass
class _Round:
    model: MoETransformer
    state: dict[str, torch.Tensor]  # the trusted part's object at the round's start (weights and moments)
    tokenizer_cid: str
    gate_cid: str
    targets: torch.Tensor | None
    train: bool
    embedded: torch.Tensor
    h: torch.Tensor
    passes: dict[int, LayerPass] = field(default_factory=dict)
    grads: dict[int, torch.Tensor] = field(default_factory=dict)  # the backward task's output gradients
    g_out: torch.Tensor | None = None
    g_in: torch.Tensor | None = None
    loss: float | None = None
    accepted_backward: set[int] = field(default_factory=set)  # the backward task's accepted slots
    data_cid: str = ""  # the round's batch: every task of the round names it
    round: int = 0
    next_backward: int = -1  # the layer the next backward task must be (the top first)


def _task_layer(task_id: str) -> tuple[str, int]:
    """("f" | "b", layer) of a language model's task id ``<kind>-RRRRRR-fL`` / ``-bL``."""
    parsed = lm_task(task_id)
    if parsed is None:
        raise ReplayDiffers(f"task {task_id!r} is not a language model's task (<kind>-RRRRRR-f<layer> or -b<layer>)")
    return parsed[2], parsed[3]


class LMReplay:
    """Replays the blocks of one language model's run, in order."""

    def __init__(self, store: BlobStore, lr_of: Callable[[int], float]) -> None:
        self.store = store
        self.lr_of = lr_of
        self._tasks: dict[str, dict[str, Any]] = {}
        self._round: _Round | None = None

    @property
    def in_round(self) -> bool:
        """Whether a round is open: begun by its layer-0 forward task and not closed by its trusted part's step."""
        return self._round is not None

    def block_error(self, block: Block) -> str | None:
        for index, tx in enumerate(block.transactions):
            try:
                self._replay(tx)
            except (ReplayDiffers, PayloadError, StorageError, ValueError, KeyError, RuntimeError) as err:
                return f"transaction {index} ({tx.kind}): {err}"
        return None

    def _replay(self, tx: Transaction) -> None:
        if tx.kind == "task":
            self._tasks[tx.payload["task_id"]] = dict(tx.payload)
        elif tx.kind == "activation":
            self._activation(tx)
        elif tx.kind == "acceptance":
            self._acceptance(tx)
        elif tx.kind == "gate_update":
            self._gate_update(tx)

    def _activation(self, tx: Transaction) -> None:
        task = self._tasks[tx.payload["task_id"]]
        direction, layer = _task_layer(task["task_id"])
        if direction == "f" and layer == 0:
            self._round = self._begin(tx.payload["gate_cid"], task)
        r = self._current()
        if (task["data_cid"], task["round"]) != (r.data_cid, r.round):
            raise ReplayDiffers(f"task {task['task_id']} names another batch or round than its round's first task")
        expected = len(r.passes) if direction == "f" else r.next_backward
        if layer != expected or (direction == "b" and layer not in r.passes):
            raise ReplayDiffers(f"task {task['task_id']} out of order: the round's next {direction} task is layer "
                                f"{expected}")
        if direction == "b":
            r.next_backward -= 1
        if direction == "f":
            r.passes[layer] = enter_layer(r.model, layer, r.h, r.train)
            grads = None
        else:
            if r.g_out is None:
                r.g_out = self._loss_gradient(r)
            r.grads = output_gradients(r.passes[layer], r.g_out)
            grads = scaled(r.grads, gradient_scale(int(r.passes[layer].x.shape[0])))
        p = r.passes[layer]
        data = encode_layer_activation(p.routing.experts, p.routing.weights, p.x, grads)
        _same("activation_cid", tx.payload["activation_cid"], cid_of(data))

    def _acceptance(self, tx: Transaction) -> None:
        direction, layer = _task_layer(tx.payload["task_id"])
        r = self._current()
        p = r.passes[layer]
        d = p.x.shape[1]
        accepted = {int(e["expert"]): decode_result(self.store.get(e["cid"]), int(p.groups[int(e["expert"])].numel()),
                                                    d) for e in tx.payload["decisions"] if e["status"] == "accepted"}
        if direction == "f":
            mixed = recorded_mix(p, accepted, r.train)
            _same("output_cid", tx.payload["output_cid"], cid_of(encode_result(mixed)))
            r.h = leave_layer(p, accepted, r.train)
            return
        aggregate = summed_rows(p.groups, accepted, *p.x.shape)  # as the validators' LMValidator.summed
        _same("output_cid", tx.payload["output_cid"], cid_of(encode_result(aggregate)))
        assert r.g_out is not None
        r.g_in = backpropagate(p, r.g_out, input_gradient(p, descaled(accepted, gradient_scale(int(p.x.shape[0])))))
        r.accepted_backward = set(accepted)

    def _gate_update(self, tx: Transaction) -> None:
        _, layer = _task_layer(tx.payload["task_id"])
        r = self._current()
        if r.loss is None or float(tx.payload["loss"]) != r.loss:
            raise ReplayDiffers(f"loss {tx.payload['loss']!r} is not the replayed {r.loss!r}")
        expected = {str(slot): cid_of(encode_gradient(r.grads[slot])) for slot in sorted(r.accepted_backward)}
        if tx.payload["gradient_cids"] != expected:
            raise ReplayDiffers("gradient_cids are not the replayed output gradients")
        if layer == 0:
            assert r.g_in is not None
            r.embedded.backward(r.g_in)
            grads = {name: p.grad for name, p in r.model.named_parameters()
                     if not is_expert_parameter(name) and p.grad is not None}
            round_index = int(self._tasks[tx.payload["task_id"]]["round"])
            new_state = adamw_step(r.state, grads, self.lr_of(round_index))
            _same("gate_cid", tx.payload["gate_cid"], cid_of(encode_trusted(new_state, r.model.config,
                                                                                r.tokenizer_cid)))
            self._round = None
        else:
            _same("gate_cid", tx.payload["gate_cid"], r.gate_cid)
            r.g_out, r.g_in = r.g_in, None

    def _begin(self, gate_cid: str, task: dict[str, Any]) -> _Round:
        state, config, tokenizer_cid = decode_trusted(self.store.get(gate_cid))
        model = MoETransformer(config)
        load_trusted(model, state)
        tokens, targets = decode_batch(self.store.get(task["data_cid"]), config.vocab_size)
        train = task["task_id"].startswith("train-")
        with torch.set_grad_enabled(train):
            embedded = model.embed(tokens)
        return _Round(model, state, tokenizer_cid, gate_cid, targets, train, embedded, embedded,
                      data_cid=task["data_cid"], round=int(task["round"]), next_backward=config.num_hidden_layers - 1)

    def _current(self) -> _Round:
        if self._round is None:
            raise ReplayDiffers("a language model's task out of order: no forward pass of layer 0 before it")
        return self._round

    def _loss_gradient(self, r: _Round) -> torch.Tensor:
        """The loss of the final stream, and dL/d(the stream) (the backward tasks start from it)."""
        if r.targets is None:
            raise ReplayDiffers("a backward task without targets")
        leaf = r.h.detach().requires_grad_(True)
        logits = r.model.head(leaf)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), r.targets.reshape(-1))
        r.loss = float(loss.item())
        loss.backward()
        assert leaf.grad is not None
        return leaf.grad


def _same(what: str, recorded: str, replayed: str) -> None:
    if recorded != replayed:
        raise ReplayDiffers(f"{what} {recorded[:16]}... is not the replayed {replayed[:16]}...")


def lm_block_check(store: BlobStore, lr_of: Callable[[int], float]) -> Callable[[LedgerState, Block], str | None]:
    """For ``bmoe audit``: each applied block of a language model's run replayed (:class:`LMReplay`)."""
    replay = LMReplay(store, lr_of)

    def check(state: LedgerState, block: Block) -> str | None:
        if block.header.height == 0:
            return None
        return replay.block_error(block)
    return check
