"""Training without the protocol: one step is torch's own AdamW step of the whole model, the loss falls on a
repetitive text, and a seed fixes every byte."""

from __future__ import annotations

import re

import pytest
import torch

from bmoe.lm.local_training import LocalTrainer, LocalTrainingSettings, train_step
from bmoe.lm.model import build_model
from bmoe.lm.optim import cosine_lr, weights_of
from bmoe.lm.windows import random_windows
from tests.lm.tiny_lm import CONTEXT, MEMORISE, stream, tiny_config


def batches(count: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [random_windows(stream(), 4, CONTEXT, generator) for _ in range(count)]


def torch_reference(model: torch.nn.Module) -> torch.optim.AdamW:
    """nanoGPT's optimizer: AdamW, betas (0.9, 0.99), decay 0.1 on matrices, none on vectors."""
    parameters = list(model.parameters())  # a tied weight once
    groups = [{"params": [p for p in parameters if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), eps=1e-8)


@pytest.mark.parametrize("tied", [False, True])
def test_train_step_is_torch_adamw_on_the_whole_model(tied: bool) -> None:
    ours, reference = build_model(tiny_config(tied), seed=3), build_model(tiny_config(tied), seed=3)
    optimizer = torch_reference(reference)
    state = None
    for step, (x, y) in enumerate(batches(5)):
        lr = cosine_lr(step, 1e-2, 2, 5, 1e-3)
        loss, state = train_step(ours, state, x, y, lr)
        optimizer.zero_grad(set_to_none=True)
        reference_loss = reference(x, y).loss
        reference_loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        assert loss == pytest.approx(float(reference_loss.detach()), abs=1e-5)
    assert state is not None and int(state["adam.step"]) == 5
    expected = dict(reference.named_parameters(remove_duplicate=False))
    for name, weight in dict(ours.named_parameters(remove_duplicate=False)).items():
        assert torch.allclose(weight, expected[name], rtol=0, atol=1e-6), name
        assert torch.equal(state[name], weight), name  # the model holds the state's weights
        assert not torch.equal(weight, dict(build_model(tiny_config(tied), seed=3).named_parameters(
            remove_duplicate=False))[name]), f"{name} never moved"
    if tied:
        assert torch.equal(state["lm_head.weight"], state["model.embed_tokens.weight"])
        assert torch.equal(state["adam.v.lm_head.weight"], state["adam.v.model.embed_tokens.weight"])


def test_train_step_leaves_the_old_state_as_it_was() -> None:
    model = build_model(tiny_config(), seed=0)
    (x, y), = batches(1)
    _, first = train_step(model, None, x, y, 1e-2)
    before = {name: tensor.clone() for name, tensor in first.items()}
    _, second = train_step(model, first, x, y, 1e-2)
    assert all(torch.equal(first[name], before[name]) for name in before)
    assert not torch.equal(second["lm_head.weight"], first["lm_head.weight"])


def test_train_step_trains_from_the_state_it_is_given_not_the_model_it_is_handed() -> None:
    (x, y), = batches(1)
    _, from_state = train_step(build_model(tiny_config(), seed=0), None, x, y, 1e-2)
    other = build_model(tiny_config(), seed=1)
    _, again = train_step(build_model(tiny_config(), seed=0), None, x, y, 1e-2)
    _, next_from_other = train_step(other, from_state, x, y, 1e-2)
    _, next_from_same = train_step(build_model(tiny_config(), seed=0), again, x, y, 1e-2)
    assert all(torch.equal(next_from_other[name], next_from_same[name]) for name in next_from_same)


def test_train_step_refuses_a_state_without_every_weight() -> None:
    model = build_model(tiny_config(), seed=0)
    (x, y), = batches(1)
    _, state = train_step(model, None, x, y, 1e-2)
    del state["model.norm.weight"]
    with pytest.raises(ValueError, match=re.escape("'model.norm.weight'")):
        train_step(model, state, x, y, 1e-2)


def test_the_loss_falls_on_a_repetitive_text_within_a_hundred_steps() -> None:
    trainer = LocalTrainer(build_model(tiny_config(), seed=0), MEMORISE, seed=0)
    losses = trainer.train(stream())
    assert len(losses) == MEMORISE.steps and trainer.step == MEMORISE.steps
    assert sum(losses[-10:]) / 10 < 0.3 * sum(losses[:10]) / 10


def test_the_trainer_calls_back_with_the_step_its_loss_and_the_cosine_learning_rate() -> None:
    settings = LocalTrainingSettings(steps=6, batch_size=2, max_lr=1e-2, warmup=2, min_lr=1e-3)
    trainer = LocalTrainer(build_model(tiny_config(), seed=0), settings, seed=0)
    seen: list[tuple[int, float, float]] = []
    losses = trainer.train(stream(), steps=4, on_step=lambda *event: seen.append(event))
    losses += trainer.train(stream(), on_step=lambda *event: seen.append(event))  # goes on to settings.steps
    assert [step for step, _, _ in seen] == list(range(6))
    assert [loss for _, loss, _ in seen] == losses
    assert [lr for _, _, lr in seen] == [cosine_lr(step, 1e-2, 2, 6, 1e-3) for step in range(6)]


def test_a_seed_fixes_every_byte_of_the_trained_weights() -> None:
    settings = LocalTrainingSettings(steps=5, batch_size=4)

    def trained(seed: int) -> dict[str, torch.Tensor]:
        trainer = LocalTrainer(build_model(tiny_config(), seed=0), settings, seed=seed)
        trainer.train(stream())
        return trainer.state

    first, second, other_batches = trained(0), trained(0), trained(1)
    assert first.keys() == second.keys()
    for name in first:
        assert first[name].dtype == second[name].dtype
        assert first[name].numpy().tobytes() == second[name].numpy().tobytes(), name
    assert any(not torch.equal(first[name], other_batches[name]) for name in weights_of(first))


def test_the_settings_refuse_what_cannot_train() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        LocalTrainingSettings(batch_size=0)
    with pytest.raises(ValueError, match="min_lr"):
        LocalTrainingSettings(max_lr=1e-4, min_lr=1e-3)
    with pytest.raises(ValueError, match="longer than the model's context"):
        LocalTrainer(build_model(tiny_config(), seed=0), LocalTrainingSettings(block_size=CONTEXT + 1))
