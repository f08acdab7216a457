"""The edge runtime's caches by content give what computing afresh gives, and are not fooled by other bytes.

- :class:`AddressedWeights` carry the CID of their bytes, and refuse to be changed;
- :meth:`ExpertRuntime.addressed` reuses a CID only for weights bit for bit equal (not for -0.0 against 0.0);
- an output gradient is decoded once a round per runtime, by CID;
- modules reused across rounds (training modules given new weights, inference modules kept by CID) compute
  the bytes a runtime that builds every module anew computes.
"""

from __future__ import annotations

import pytest
import torch

from bmoe.edge.runtime import AddressedWeights, ExpertRuntime, TaskInputs, weights_cid
from bmoe.moe.experts import ExpertSpec, build_expert
from bmoe.moe.payloads import encode_gradient
from bmoe.storage import MemoryStore, cid_of, serialize_tensors

SPEC = ExpertSpec("mlp", (1, 8, 8), 10, 16)


def _weights(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {name: w.detach().clone() for name, w in build_expert(SPEC).state_dict().items()}


def test_addressed_weights_carry_their_cid_and_refuse_changes() -> None:
    weights = _weights(0)
    cid = cid_of(serialize_tensors(weights))
    addressed = AddressedWeights(cid, weights)
    assert weights_cid(addressed) == cid == weights_cid(dict(addressed))
    with pytest.raises(TypeError):
        addressed["fc1.weight"] = torch.zeros(1)
    with pytest.raises(TypeError):
        addressed.pop("fc1.bias")


def test_equal_bits_share_a_cid_and_other_bits_get_their_own() -> None:
    runtime = ExpertRuntime(MemoryStore(), SPEC)
    weights = _weights(0)
    first = runtime.addressed(weights)
    twin = runtime.addressed({name: w.clone() for name, w in weights.items()})  # a colluder's identical copy
    assert twin is first and first.cid == cid_of(serialize_tensors(weights))
    signed_zero = {name: w.clone() for name, w in weights.items()}
    signed_zero["fc2.bias"][-1] = -0.0 if float(weights["fc2.bias"][-1]) == 0.0 else 0.0
    nudged = {name: w.clone() for name, w in weights.items()}
    nudged["fc1.weight"][-1, -1] += 1.0  # past the sampled leading values: found only by the full comparison
    for other in (signed_zero, nudged):
        found = runtime.addressed(other)
        assert found is not first and found.cid == cid_of(serialize_tensors(other)) != first.cid


def test_a_gradient_is_decoded_once_a_round_by_cid() -> None:
    store = MemoryStore()
    grad = torch.randn(4, 10)
    cid = store.put(encode_gradient(grad))
    runtime = ExpertRuntime(store, SPEC)
    loads: list[str] = []

    def load() -> torch.Tensor:
        loads.append(cid)
        return grad.clone()

    first = runtime.gradient(cid, load)
    assert runtime.gradient(cid, load) is first and torch.equal(first, grad) and len(loads) == 1
    runtime.new_round()
    runtime.gradient(cid, load)
    assert len(loads) == 2


def test_reused_modules_compute_what_new_modules_compute() -> None:
    store = MemoryStore()
    cids = [store.put(serialize_tensors(_weights(seed))) for seed in range(3)]
    x = torch.randn(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    grad = torch.randn(12, 10, generator=torch.Generator().manual_seed(2)) / 12
    reused = ExpertRuntime(store, SPEC)

    def answers(runtime: ExpertRuntime, cid: str, round_index: int) -> tuple[str, str, str]:
        task = TaskInputs(f"t{round_index}", f"task{round_index}", "activation", x, {0: torch.arange(12)})
        trained = runtime.forward(cid, runtime.weights(cid), task, 0, train=True)
        update, _ = runtime.update(trained, "grad", grad, 0.1)
        serving = TaskInputs(f"s{round_index}", f"task{round_index}", "served", x, {0: torch.arange(12)})
        served = runtime.forward(cid, runtime.weights(cid), serving, 0, train=False)
        return trained.encoded_result().digest, update.digest, served.encoded_result().digest

    for round_index, cid in enumerate([*cids, *cids]):  # each round reuses the last one's modules
        reused.new_round()
        fresh = ExpertRuntime(store, SPEC)
        assert answers(reused, cid, round_index) == answers(fresh, cid, round_index)
    assert reused.forward_passes == 12
