"""The language model's edge runtime computes what an expert module computes, by its fast paths too.

- :func:`swiglu` (the expert as a function of its weights) gives :class:`SwiGLUExpert`'s bits;
- a backward task's dL/d(input) and update are the module's vector-Jacobian product and AdamW step, whether the
  forward task's graph is reused or the pass is run afresh, and a graph is reused only for rows of the same bits;
- an update given an output gradient of other bits than the activation's steps with that gradient;
- the updated object an edge computed is kept as the tensors its bytes decode to;
- the traffic counted for a signed answer is its canonical JSON's length.
"""

from __future__ import annotations

import torch

from bmoe.edge.lm_runtime import LMExpertRuntime, swiglu, swiglu_spec
from bmoe.edge.runtime import AddressedWeights, TaskInputs
from bmoe.ledger.encoding import canonical_json
from bmoe.ledger.keys import derive_identity
from bmoe.ledger.node import Signer
from bmoe.ledger.transactions import tx_to_dict
from bmoe.lm.model import SwiGLUExpert
from bmoe.lm.optim import adamw_step, weights_of, with_moments
from bmoe.protocol.measure import wire_size
from bmoe.storage import MemoryStore, cid_of, deserialize_tensors, serialize_tensors

D, WIDTH, ROWS, LR = 32, 48, 10, 1e-2
SPEC = swiglu_spec(D, WIDTH)


def _expert(seed: int) -> SwiGLUExpert:
    torch.manual_seed(seed)
    return SwiGLUExpert(D, WIDTH)


def _object(expert: SwiGLUExpert) -> AddressedWeights:
    state = with_moments({name: p.detach().clone() for name, p in expert.named_parameters()})
    return AddressedWeights(cid_of(serialize_tensors(state)), state)


def _rows(seed: int) -> torch.Tensor:
    return torch.randn(ROWS, D, generator=torch.Generator().manual_seed(seed))  # (n, d)


def _task(x: torch.Tensor, grad: torch.Tensor | None, name: str) -> TaskInputs:
    groups = {0: torch.arange(x.shape[0])}
    return TaskInputs(name, f"task-{name}", f"activation-{name}", x, groups, None if grad is None else {0: grad})


def _module_step(expert: SwiGLUExpert, state: AddressedWeights, x: torch.Tensor, grad: torch.Tensor) -> tuple[
        torch.Tensor, bytes]:
    """dL/d(input) and the updated object as a module computes them (autograd through ``nn.Linear``)."""
    module = SwiGLUExpert(D, WIDTH)
    module.load_state_dict(weights_of(state))
    rows = x.clone().requires_grad_(True)
    y = module(rows)
    (dx,) = torch.autograd.grad(y, rows, grad, retain_graph=True)
    y.backward(grad)
    grads = {name: p.grad for name, p in module.named_parameters() if p.grad is not None}
    return dx, serialize_tensors(adamw_step(dict(state), grads, LR))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a.view(torch.int32), b.view(torch.int32))


def test_the_expert_as_a_function_of_its_weights_gives_the_modules_bits() -> None:
    expert, x = _expert(0), _rows(1)
    with torch.no_grad():
        assert _same(swiglu(x, expert.w1.weight, expert.w2.weight, expert.w3.weight), expert(x))


def test_a_backward_task_through_the_forward_tasks_graph_is_the_modules_vjp_and_step() -> None:
    expert, x, grad = _expert(2), _rows(3), _rows(4)
    state = _object(expert)
    reference_dx, reference_update = _module_step(expert, state, x, grad)
    reused, fresh = LMExpertRuntime(MemoryStore(), SPEC), LMExpertRuntime(MemoryStore(), SPEC)
    forward = reused.forward(state.cid, state, _task(x, None, "f0"), 0, True)  # a training round's forward task
    with torch.no_grad():
        assert _same(forward.output, expert(x))
    for runtime in (reused, fresh):
        runtime.new_round()  # each task starts one: the graph is kept across it
        backward = runtime.forward(state.cid, state, _task(x.clone(), grad, "b0"), 0, True)
        assert _same(backward.output, reference_dx)
        encoded, _ = runtime.update(backward, cid_of(serialize_tensors({"g": grad})), grad.clone(), LR)
        assert encoded.data == reference_update
    assert (reused.reused_graphs, fresh.reused_graphs) == (1, 0)


def test_a_forward_tasks_graph_is_not_used_for_rows_of_other_bits() -> None:
    expert, x, grad = _expert(5), _rows(6), _rows(7)
    state = _object(expert)
    runtime = LMExpertRuntime(MemoryStore(), SPEC)
    runtime.forward(state.cid, state, _task(x, None, "f0"), 0, True)
    other = x.clone()
    other[0, 0] = -other[0, 0]
    reference_dx, reference_update = _module_step(expert, state, other, grad)
    backward = runtime.forward(state.cid, state, _task(other, grad, "b0"), 0, True)
    assert runtime.reused_graphs == 0
    assert _same(backward.output, reference_dx)
    assert runtime.update(backward, "g", grad, LR)[0].data == reference_update


def test_an_inference_rounds_forward_task_keeps_no_graph() -> None:
    expert, x, grad = _expert(15), _rows(16), _rows(17)
    state = _object(expert)
    runtime = LMExpertRuntime(MemoryStore(), SPEC)
    forward = runtime.forward(state.cid, state, _task(x, None, "f0"), 0, False)
    with torch.no_grad():
        assert _same(forward.output, expert(x)) and forward.output.grad_fn is None
    reference_dx, _ = _module_step(expert, state, x, grad)
    assert _same(runtime.forward(state.cid, state, _task(x, grad, "b0"), 0, True).output, reference_dx)
    assert runtime.reused_graphs == 0


def test_an_update_given_another_output_gradient_steps_with_that_gradient() -> None:
    expert, x, grad, other = _expert(8), _rows(9), _rows(10), _rows(11)
    state = _object(expert)
    runtime = LMExpertRuntime(MemoryStore(), SPEC)
    backward = runtime.forward(state.cid, state, _task(x, grad, "b0"), 0, True)
    _, reference_update = _module_step(expert, state, x, other)
    assert runtime.update(backward, "other", other, LR)[0].data == reference_update
    _, kept_update = _module_step(expert, state, x, grad)
    assert runtime.update(backward, "grad", grad, LR)[0].data == kept_update != reference_update


def test_an_updated_object_is_kept_as_the_tensors_its_bytes_decode_to() -> None:
    expert, x, grad = _expert(12), _rows(13), _rows(14)
    state = _object(expert)
    runtime = LMExpertRuntime(MemoryStore(), SPEC)  # an empty store: the kept object is read from nowhere else
    encoded, _ = runtime.update(runtime.forward(state.cid, state, _task(x, grad, "b0"), 0, True), "g", grad, LR)
    assert runtime.holds(encoded.cid)
    kept, decoded = runtime.weights(encoded.cid), deserialize_tensors(encoded.data)[0]
    assert sorted(kept) == sorted(decoded)
    assert all(kept[name].dtype == decoded[name].dtype and torch.equal(kept[name].reshape(-1).view(torch.uint8),
                                                                       decoded[name].reshape(-1).view(torch.uint8))
               for name in decoded)
    assert serialize_tensors(kept) == encoded.data


def test_the_traffic_of_a_signed_answer_is_its_canonical_json() -> None:
    signer = Signer(derive_identity(7, "edge"), next_nonce=3)
    tx = signer.sign("commitment", {"task_id": "train-000001-b0",
                                    "results": [{"expert": 5, "digest": "ab" * 32, "cid": cid_of(b"result")}]})
    assert wire_size(tx) == len(canonical_json(tx_to_dict(tx)))


def test_a_training_rounds_updates_reuse_the_backward_tasks_weight_gradients_and_stay_bit_identical() -> None:
    from tests.lm.lm_runs import max_difference, reference_training, tiny_session

    session = tiny_session(lm={"steps": 2})
    session.train()
    runtimes = session.runtimes
    assert sum(runtime.reused_weight_grads for runtime in runtimes) > 0  # the scaled gradient's pass served the update
    assert max_difference(session.ledger_model(), reference_training(session, 2)) == 0.0
