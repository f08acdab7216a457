"""An edge's computation for a language model's experts: forward calls, vector-Jacobian products, AdamW steps.

A language model's expert (one SwiGLU FFN of one layer, a ledger slot) is stateless and position-wise, so an edge
needs only its object (weights and AdamW moments, ``lm/optim.py``) and the rows routed to it, which the layer's
activation carries (``lm/payloads.py``). Two kinds of task reach it:

- **forward** (the activation has no gradients): the result is the expert's output on its rows (n_e, d);
- **backward** (the activation carries dL/d(output) per slot): the result is dL/d(input) (n_e, d), the vector-
  Jacobian product the validators need to continue backpropagation below this layer, and the update (step 5) is
  one AdamW step of the expert's object with the gradient of its weights, from the same forward pass.

The expert runs as a function of its weights (:func:`swiglu`, the kernels of
:class:`~bmoe.lm.model.SwiGLUExpert`, so the same bits), not as a module built per call; a backward task's one
autograd pass gives dL/d(input) and the weights' gradients together, and the update reuses those gradients when the
output gradient it is given has the bits the activation carried (else it backpropagates that one). A forward task
of a training round (``train``) keeps its pass's graph (the most recent :data:`KEEP_GRAPHS`, across tasks): the
backward task of the same expert (same weights CID) on rows with the same bits backpropagates through it instead of
running the forward pass again.

Everything else (memo by content, numeric profiles, cached objects by CID, attacks through ``EdgeWorker``) is
:class:`~bmoe.edge.runtime.ExpertRuntime`'s.

Must not know: the ledger, the round, the rest of the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bmoe.edge.profiles import NumericProfile
from bmoe.edge.runtime import Encoded, ExpertRuntime, Forward, TaskInputs, Weights
from bmoe.lm.model import SwiGLUExpert
from bmoe.lm.optim import adamw_step
from bmoe.lm.payloads import decode_layer_activation, gradient_scale
from bmoe.moe.experts import ExpertSpec
from bmoe.storage import BlobStore

SWIGLU = "swiglu"  # the expert preset a language model's genesis records
MATRICES = ("w1.weight", "w2.weight", "w3.weight")  # SwiGLUExpert's parameters, as its object names them
KEEP_GRAPHS = 64  # forward tasks' graphs kept for the backward tasks (a round of the default model makes 32)


def swiglu_spec(hidden_size: int, intermediate_size: int) -> ExpertSpec:
    """The genesis's expert spec of a language model: a SwiGLU FFN (d -> d) of width ``intermediate_size``."""
    return ExpertSpec(SWIGLU, (hidden_size,), hidden_size, intermediate_size)


def swiglu(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor) -> torch.Tensor:
    """:meth:`SwiGLUExpert.forward` as a function of its weights: w2(silu(w1 x) * w3 x), (n, d) -> (n, d), with
    the same kernels (``nn.Linear`` without bias is ``F.linear``)."""
    return F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` and ``b`` have the same dtype, shape and bytes (-0.0 is not 0.0, a NaN is itself)."""
    if a.dtype != b.dtype or a.shape != b.shape or a.device != b.device:
        return False
    return torch.equal(a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))


@dataclass
class _Graph:
    """An expert's forward pass with its graph: the output and the leaves it is a function of."""

    rows: torch.Tensor  # (n_e, d) float32 the rows as the task carried them
    x: torch.Tensor  # (n_e, d) the rows as the graph's leaf (the profile's dtype and device)
    leaves: list[torch.Tensor]  # the matrices of MATRICES, as the graph's leaves
    output: torch.Tensor  # (n_e, d)


@dataclass
class _Backward:
    """A backward task's pass through one expert, kept for the update: the graph, the output gradient it was
    taken with and the weights' gradients it gave."""

    output: torch.Tensor  # (n_e, d) the expert's output, its graph retained
    leaves: list[torch.Tensor]  # the matrices of MATRICES, as the graph's leaves (the profile's dtype and device)
    grad: torch.Tensor  # (n_e, d) float32 dL/d(output), as the activation carried it
    weight_grads: list[torch.Tensor]  # dL/d(each matrix) for ``grad``
    state: Weights  # the expert's object: weights and moments
    scale: float  # the power of two the activation's gradients carry (lm.payloads.gradient_scale)


class LMExpertRuntime(ExpertRuntime):
    """An :class:`ExpertRuntime` for SwiGLU experts whose objects hold AdamW moments too."""

    def __init__(self, store: BlobStore, spec: ExpertSpec, profile: NumericProfile | None = None) -> None:
        d, width = spec.input_shape[0], spec.hidden
        super().__init__(store, spec, lambda: SwiGLUExpert(d, width), profile)
        self._backwards: dict[tuple[str, str, str, int, str], _Backward] = {}
        self._graphs: dict[tuple[str, int, str], _Graph] = {}  # forward tasks' passes by (weights CID, expert,
        # profile), the most recent last; kept across tasks (``new_round`` starts each task)
        self.reused_graphs = 0  # backward tasks that backpropagated through a forward task's graph
        self.reused_weight_grads = 0  # updates that took the backward task's weight gradients (no second pass)

    def new_round(self) -> None:
        super().new_round()
        self._backwards.clear()

    def decode_task(self, task: bytes, activation: bytes, num_experts: int) -> tuple[
            torch.Tensor, dict[int, torch.Tensor], dict[int, torch.Tensor] | None]:
        return decode_layer_activation(activation, num_experts)

    def _matrices(self, weights: Weights) -> list[torch.Tensor]:
        """The expert's matrices in the profile's precision and on its device (the stored tensors are untouched)."""
        dtype = torch.float64 if self.profile.float64 else torch.float32
        return [weights[name].to(device=self.profile.device, dtype=dtype) for name in MATRICES]

    def forward(self, weights_cid: str, weights: Weights, task: TaskInputs, expert: int, train: bool) -> Forward:
        """A forward task: the expert's output on its rows (in a training round, ``train``, its graph kept for the
        backward task). A backward task: dL/d(input) of its rows, and the weights' gradients kept for the AdamW step
        (memoised by content, as the classifier's)."""
        profile = self.profile
        key = (weights_cid, task.task_cid, task.activation_cid, expert, profile.name)
        if key not in self._forwards:
            started = time.perf_counter()
            matrices = self._matrices(weights)
            x_e = task.x[task.groups[expert]]  # (n_e, d)
            graph_key = (weights_cid, expert, profile.name)
            if task.grads is None and (not train or profile.chunk_rows is not None):  # an inference round, or
                # rows computed in batch splits: no graph kept
                with profile.computing(), torch.no_grad():
                    output = profile.forward(lambda rows: swiglu(rows, *matrices), x_e)  # (n_e, d) float32
            elif task.grads is None:
                graph = self._graph(matrices, x_e)
                self._graphs[graph_key] = graph
                while len(self._graphs) > KEEP_GRAPHS:
                    del self._graphs[next(iter(self._graphs))]
                output = graph.output.detach().to(device="cpu", dtype=torch.float32)
            else:
                graph = self._graphs.pop(graph_key, None)
                if graph is None or not same_bits(graph.rows, x_e):
                    graph = self._graph(matrices, x_e)
                else:
                    self.reused_graphs += 1
                output = self._backward(key, graph, task.grads[expert], weights,
                                        gradient_scale(int(task.x.shape[0])))
            dtypes = {name: tensor.dtype for name, tensor in weights.items()}
            self._forwards[key] = Forward(key, None, output, x_e, dtypes, time.perf_counter() - started)
            self.compute_seconds += self._forwards[key].seconds
            self.forward_passes += 1
        return self._forwards[key]

    def _graph(self, matrices: list[torch.Tensor], rows: torch.Tensor) -> _Graph:
        """The expert's forward pass on ``rows`` (n_e, d) with its graph, in the profile's precision."""
        profile = self.profile
        x = rows.to(device=profile.device, dtype=matrices[0].dtype).detach().requires_grad_(True)  # (n_e, d)
        leaves = [m.detach().requires_grad_(True) for m in matrices]
        with profile.computing(), torch.enable_grad():
            return _Graph(rows, x, leaves, swiglu(x, *leaves))  # output (n_e, d)

    def _backward(self, key: tuple[str, str, str, int, str], graph: _Graph, grad: torch.Tensor,
                  state: Weights, scale: float) -> torch.Tensor:
        """dL/d(input) (n_e, d) float32 of the graph's rows for dL/d(output) ``grad`` (n_e, d); the weights'
        gradients are kept for the update."""
        y = graph.output
        with self.profile.computing():
            dx, *weight_grads = torch.autograd.grad(y, [graph.x, *graph.leaves], grad.to(device=y.device,
                                                                                         dtype=y.dtype),
                                                    retain_graph=True)
        self._backwards[key] = _Backward(y, graph.leaves, grad, weight_grads, state, scale)
        return dx.to(device="cpu", dtype=torch.float32)

    def update(self, forward: Forward, grad_cid: str, grad: torch.Tensor, lr: float) -> tuple[Encoded, float]:
        """One AdamW step of the expert's object with the weights' gradients for the output gradient ``grad``
        (those of the backward pass when ``grad`` has its bits, else backpropagated through its kept graph)."""
        memo = (grad_cid, lr)
        if memo not in forward.updates:
            started = time.perf_counter()
            kept = self._backwards[forward.key]
            weight_grads = kept.weight_grads
            if same_bits(grad * kept.scale, kept.grad):  # the activation's gradient, scaled by a power of two:
                weight_grads = [g / kept.scale for g in weight_grads]  # the weights' gradients scale back exactly
                self.reused_weight_grads += 1
            elif not same_bits(grad, kept.grad):
                with self.profile.computing():
                    weight_grads = list(torch.autograd.grad(
                        kept.output, kept.leaves, grad.to(device=kept.output.device, dtype=kept.output.dtype),
                        retain_graph=True))
            grads = {name: g.to(device="cpu", dtype=torch.float32) for name, g in zip(MATRICES, weight_grads,
                                                                                       strict=True)}
            new = adamw_step(dict(kept.state), grads, lr)
            forward.updates[memo] = self.encode_own(new)
            forward.update_seconds[memo] = time.perf_counter() - started
            self.compute_seconds += forward.update_seconds[memo]
            self.backward_passes += 1
        return forward.updates[memo], forward.update_seconds[memo]
