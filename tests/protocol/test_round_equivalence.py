"""The distributed round computes exactly the MoE a PyTorch user would write, forward and backward."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bmoe.data import task_batches
from bmoe.run.session import Session
from bmoe.storage import deserialize_tensors
from tests.conftest import small_config


def test_inference_round_output_equals_local_moe(tiny_data) -> None:  # type: ignore[no-untyped-def]
    session = Session(small_config(), dataset=tiny_data)
    model = session.model()
    x = tiny_data.x_test[:32]
    outcome = session.infer(x)
    with torch.no_grad():
        expected = model(x)
    assert torch.allclose(outcome.logits, expected, atol=1e-6)
    assert outcome.accepted == sum(1 for c in outcome.counts if c > 0) and outcome.rejected == 0


def test_training_round_is_one_sgd_step_of_the_local_moe(tiny_data) -> None:  # type: ignore[no-untyped-def]
    config = small_config(balance=0.0)
    session = Session(config, dataset=tiny_data)
    model = session.model().train()
    indices = next(iter(task_batches(tiny_data, config.batch_size, config.seed, 1)))[1]
    x, y = tiny_data.x_train[indices], tiny_data.y_train[indices]
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    with torch.no_grad():
        expected = {name: p - config.lr * p.grad if p.grad is not None else p.clone()
                    for name, p in model.named_parameters()}
    outcome = session.train(rounds=1)[0]
    assert abs(outcome.loss - loss.item()) < 1e-6
    state = session.node.state
    gate = deserialize_tensors(session.store.get(state.gate_cid))[0]
    for name, value in gate.items():
        assert torch.allclose(value, expected[f"gate.{name}"], atol=1e-6), name
    changed = 0
    for e, cid in enumerate(state.expert_cids):
        weights = deserialize_tensors(session.store.get(cid))[0]
        for name, value in weights.items():
            assert torch.allclose(value, expected[f"experts.{e}.{name}"], atol=1e-6), (e, name)
        changed += cid != session.node.state.genesis["expert_cids"][e]
    assert changed == sum(1 for c in outcome.counts if c > 0)
