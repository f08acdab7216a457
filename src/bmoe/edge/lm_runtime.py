"""An edge's computation for a language model's experts: forward calls, vector-Jacobian products, AdamW steps.

A language model's expert (one SwiGLU FFN of one layer, a ledger slot) is stateless and position-wise, so an edge
needs only its object (weights and AdamW moments, ``lm/optim.py``) and the rows routed to it, which the layer's
activation carries (``lm/payloads.py``). Two kinds of task reach it:

- **forward** (the activation has no gradients): the result is the expert's output on its rows (n_e, d);
- **backward** (the activation carries dL/d(output) per slot): the result is dL/d(input) (n_e, d), the vector-
  Jacobian product the validators need to continue backpropagation below this layer, and the update (step 5) is
  one AdamW step of the expert's object with the gradient of its weights, from the same forward pass.

Everything else (memo by content, numeric profiles, cached objects by CID, attacks through ``EdgeWorker``) is
:class:`~bmoe.edge.runtime.ExpertRuntime`'s.

Must not know: the ledger, the round, the rest of the model.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from bmoe.edge.profiles import NumericProfile
from bmoe.edge.runtime import Encoded, ExpertRuntime, Forward, TaskInputs, Weights
from bmoe.lm.model import SwiGLUExpert
from bmoe.lm.optim import adamw_step, weights_of
from bmoe.lm.payloads import decode_layer_activation
from bmoe.moe.experts import ExpertSpec
from bmoe.storage import BlobStore, serialize_tensors

SWIGLU = "swiglu"  # the expert preset a language model's genesis records


def swiglu_spec(hidden_size: int, intermediate_size: int) -> ExpertSpec:
    """The genesis's expert spec of a language model: a SwiGLU FFN (d -> d) of width ``intermediate_size``."""
    return ExpertSpec(SWIGLU, (hidden_size,), hidden_size, intermediate_size)


class LMExpertRuntime(ExpertRuntime):
    """An :class:`ExpertRuntime` for SwiGLU experts whose objects hold AdamW moments too."""

    def __init__(self, store: BlobStore, spec: ExpertSpec, profile: NumericProfile | None = None) -> None:
        d, width = spec.input_shape[0], spec.hidden
        super().__init__(store, spec, lambda: SwiGLUExpert(d, width), profile)
        self._graphs: dict[tuple[str, str, str, int, str], tuple[torch.Tensor, Weights]] = {}

    def new_round(self) -> None:
        super().new_round()
        self._graphs.clear()

    def decode_task(self, task: bytes, activation: bytes, num_experts: int) -> tuple[
            torch.Tensor, dict[int, torch.Tensor], dict[int, torch.Tensor] | None]:
        return decode_layer_activation(activation, num_experts)

    def _build(self, weights: Weights, train: bool) -> nn.Module:
        return super()._build(weights_of(weights), train)

    def forward(self, weights_cid: str, weights: Weights, task: TaskInputs, expert: int, train: bool) -> Forward:
        """A forward task: the expert's output on its rows. A backward task: dL/d(input) of its rows, the
        forward pass kept for the AdamW step (memoised by content, as the classifier's)."""
        if task.grads is None:
            return super().forward(weights_cid, weights, task, expert, False)
        profile = self.profile
        key = (weights_cid, task.task_cid, task.activation_cid, expert, profile.name)
        if key not in self._forwards:
            started = time.perf_counter()
            module = self._build(weights, True)
            dtype = torch.float64 if profile.float64 else torch.float32
            x_e = task.x[task.groups[expert]].to(device=profile.device, dtype=dtype).requires_grad_(True)  # (n_e, d)
            grad = task.grads[expert].to(device=profile.device, dtype=dtype)  # (n_e, d)
            with profile.computing(), torch.enable_grad():
                y = module(x_e)  # (n_e, d)
                (dx,) = torch.autograd.grad(y, x_e, grad, retain_graph=True)
            output = dx.to(device="cpu", dtype=torch.float32)
            dtypes = {name: tensor.dtype for name, tensor in weights.items()}
            self._forwards[key] = Forward(key, module, output, x_e, dtypes, time.perf_counter() - started)
            self._graphs[key] = (y, weights)
            self.compute_seconds += self._forwards[key].seconds
            self.forward_passes += 1
        return self._forwards[key]

    def update(self, forward: Forward, grad_cid: str, grad: torch.Tensor, lr: float) -> tuple[Encoded, float]:
        """One AdamW step of the expert's object from its kept forward pass and the output gradient."""
        memo = (grad_cid, lr)
        if memo not in forward.updates:
            started = time.perf_counter()
            y, state = self._graphs[forward.key]
            forward.module.zero_grad(set_to_none=True)
            with self.profile.computing():
                y.backward(grad.to(device=y.device, dtype=y.dtype), retain_graph=True)
            grads = {name: p.grad.to(device="cpu", dtype=torch.float32)
                     for name, p in forward.module.named_parameters() if p.grad is not None}
            new = adamw_step(dict(state), grads, lr)
            forward.updates[memo] = Encoded.of(serialize_tensors(new))
            self._own[forward.updates[memo].cid] = forward.updates[memo].data
            forward.update_seconds[memo] = time.perf_counter() - started
            self.compute_seconds += forward.update_seconds[memo]
            self.backward_passes += 1
        return forward.updates[memo], forward.update_seconds[memo]
