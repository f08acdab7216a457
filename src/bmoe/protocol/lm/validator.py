"""The validators' work in a language model's round: the trusted part, each layer's routing, the loss, the
trusted part's AdamW step.

An :class:`LMValidator` is the classifier's :class:`~bmoe.protocol.validator.Validator` (it decides expert calls,
disputes and uploads exactly as there, over the ledger's slots) with the trusted part instead of the linear gate:
it loads the trusted object the ledger's ``gate_cid`` names, records each layer's activation (the routing and the
experts' input; in a backward task, the output gradients too), aggregates forward results as the routing mixes
them and backward results as the sum they are, and at the end of a training round steps the trusted part.

Must not know: how edges are reached, the order of a round (``protocol/lm/round.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bmoe.ledger.node import LedgerNode, Signer
from bmoe.ledger.state import LedgerState
from bmoe.ledger.transactions import Transaction
from bmoe.lm.config import LMConfig
from bmoe.lm.model import MoETransformer
from bmoe.lm.optim import Tensors, adamw_step
from bmoe.lm.payloads import encode_layer_activation
from bmoe.moe.dispatch import activation_counts
from bmoe.moe.gate import Routing
from bmoe.moe.payloads import PayloadError, encode_gradient
from bmoe.protocol.gate_step import DIVERGED_HINT, require_finite_round
from bmoe.protocol.lm.layers import LayerPass, recorded_mix, summed_rows
from bmoe.protocol.lm.trusted import decode_trusted, encode_trusted, is_expert_parameter, load_trusted
from bmoe.protocol.validator import Validator
from bmoe.storage import BlobStore, StorageError, deserialize_tensors

Form = dict[str, tuple[torch.dtype, tuple[int, ...]]]  # an object's tensors: name -> (dtype, shape)


def _form(tensors: Tensors) -> Form:
    return {name: (tensor.dtype, tuple(tensor.shape)) for name, tensor in tensors.items()}


class LMValidator(Validator):
    """A validator of a language model's run; ``config`` is the model the genesis's trusted object describes."""

    def __init__(self, signer: Signer, node: LedgerNode, store: BlobStore, config: LMConfig) -> None:
        super().__init__(signer, node, store, config.hidden_size, config.num_slots, config.num_experts_per_tok,
                         config.hidden_size)
        self.config = config
        self._model: tuple[str, MoETransformer, Tensors, str] | None = None  # CID, model, state, tokenizer CID
        self._forms: dict[str, Form] = {}  # expert objects' forms by CID, the most recently used last

    def model(self, cid: str) -> MoETransformer:
        """The model with the trusted part of ``cid`` (its experts are never run here)."""
        return self._load(cid)[1]

    def _load(self, cid: str) -> tuple[str, MoETransformer, Tensors, str]:
        if self._model is None or self._model[0] != cid:
            state, config, tokenizer_cid = decode_trusted(self.store.get(cid))
            if config != self.config:
                raise ValueError(f"the trusted object {cid} describes another model than this run's")
            model = self._model[1] if self._model is not None else MoETransformer(config)
            load_trusted(model, state)
            self._model = (cid, model, state, tokenizer_cid)
        return self._model

    def check_answer(self, state: LedgerState, phase: str, expert: int, cid: str, data: bytes) -> Tensors | None:
        """An expert update must be an object of its base's form (the same tensors, shapes and dtypes: weights and
        AdamW moments), else it is malformed: the next call on it would fail on every edge. The update's tensors."""
        if phase != "update":
            return None
        try:
            update = deserialize_tensors(data)[0]
        except StorageError as err:
            raise PayloadError(f"update: not a safetensors object ({err})") from None
        form = _form(update)
        if form != self._form_of(state.expert_cids[expert]):
            raise PayloadError(f"update of expert {expert}: not an object of its base's form (weights and moments)")
        self._remember_form(cid, form)  # the next round's base, when accepted
        return update

    def _form_of(self, cid: str) -> Form:
        """The form of the stored expert object ``cid``, read once per CID (the bytes a CID names never change)."""
        form = self._forms.pop(cid, None)
        if form is None:
            form = _form(deserialize_tensors(self.store.get(cid))[0])
        self._remember_form(cid, form)
        return form

    def _remember_form(self, cid: str, form: Form) -> None:
        self._forms.pop(cid, None)
        self._forms[cid] = form  # the most recently used last
        while len(self._forms) > 2 * self.config.num_slots:
            del self._forms[next(iter(self._forms))]

    def current_model(self) -> MoETransformer:
        """The model of the trusted part the ledger holds now (pending transactions included)."""
        return self.model(self.node.pending_view().gate_cid)

    def activation(self, task_id: str, layer: LayerPass, grads: dict[int, torch.Tensor] | None = None) -> Transaction:
        """A layer's activation: its routing and the experts' input by CID (a backward task: the output
        gradients too), with the tokens per slot."""
        gate_cid = self.node.pending_view().gate_cid
        data = encode_layer_activation(layer.routing.experts, layer.routing.weights, layer.x, grads)
        return self.signer.sign("activation", {
            "task_id": task_id, "gate_cid": gate_cid, "activation_cid": self.store.put(data),
            "counts": activation_counts(layer.routing.experts, self.config.num_slots)})

    def mixed(self, layer: LayerPass, outputs: dict[int, torch.Tensor], train: bool) -> torch.Tensor:
        """A forward task's aggregate: the accepted experts' mix (n, d), made once for the record and the stream
        (:func:`~bmoe.protocol.lm.layers.recorded_mix`)."""
        return recorded_mix(layer, outputs, train)

    def summed(self, routing: Routing, groups: dict[int, torch.Tensor],
               outputs: dict[int, torch.Tensor]) -> torch.Tensor:
        """A backward task's aggregate: each token's accepted dL/d(input) rows summed (n, d); zeros when no call was
        accepted."""
        return summed_rows(groups, outputs, routing.experts.shape[0], self.config.hidden_size)

    def loss(self, h: torch.Tensor, targets: torch.Tensor, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The cross-entropy (nats per token) of the head on the final stream ``h`` (B, T, d), and the stream's
        leaf it was computed from (its ``grad`` is dL/dh after ``backward``)."""
        model = self.current_model()
        leaf = h.detach().requires_grad_(train)
        with torch.set_grad_enabled(train):
            logits = model.head(leaf)  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
        require_finite_round("the loss", loss.detach(), DIVERGED_HINT)
        return loss, leaf

    def zero_grad(self) -> None:
        self.current_model().zero_grad(set_to_none=True)

    def trusted_step(self, lr: float) -> str:
        """One AdamW step of the trusted part with the gradients accumulated in this round; the new object's CID."""
        _, model, state, tokenizer_cid = self._load(self.node.pending_view().gate_cid)
        grads = {name: p.grad for name, p in model.named_parameters()
                 if not is_expert_parameter(name) and p.grad is not None}
        for name, grad in sorted(grads.items()):
            require_finite_round(f"the gradient of {name}", grad, DIVERGED_HINT)
        new_state = adamw_step(state, grads, lr)
        return self.store.put(encode_trusted(new_state, self.config, tokenizer_cid))

    def gate_update(self, task_id: str, loss: float, gate_cid: str,
                    gradients: dict[int, torch.Tensor]) -> tuple[Transaction, dict[int, tuple[str, torch.Tensor]]]:
        """A backward task's ``gate_update``: the round's loss, the trusted part's CID after it (the new one in
        the last backward task, else the current one) and each accepted slot's output gradient by CID."""
        stored = {}
        for slot, grad in sorted(gradients.items()):
            require_finite_round(f"dL/d(output) of slot {slot}", grad, DIVERGED_HINT)
            stored[slot] = (self.store.put(encode_gradient(grad)), grad)
        tx = self.signer.sign("gate_update", {"task_id": task_id, "loss": loss, "gate_cid": gate_cid,
                                              "gradient_cids": {str(s): cid for s, (cid, _) in stored.items()}})
        return tx, stored
