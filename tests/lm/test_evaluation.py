"""Evaluation: nats per token over seeded windows or one full pass, lower for a model that learnt the text."""

from __future__ import annotations

import math

import pytest
import torch

from bmoe.lm.evaluation import bits_per_token, evaluate, evaluate_all
from bmoe.lm.model import build_model
from bmoe.lm.windows import consecutive_windows
from tests.lm.tiny_lm import CONTEXT, memorised_model, stream, tiny_config


def test_a_model_that_memorised_the_text_scores_far_lower_than_a_fresh_one() -> None:
    fresh, memorised = build_model(tiny_config(), seed=0), memorised_model()
    fresh_loss = evaluate(fresh, stream(), CONTEXT, batches=4, batch_size=8, seed=5)
    assert fresh_loss == pytest.approx(math.log(tiny_config().vocab_size), rel=0.1)  # an untrained model: uniform
    assert evaluate(memorised, stream(), CONTEXT, batches=4, batch_size=8, seed=5) < 0.3 * fresh_loss
    assert evaluate_all(memorised, stream(), CONTEXT) < 0.3 * evaluate_all(fresh, stream(), CONTEXT)


def test_evaluate_is_fixed_by_its_seed_and_leaves_the_model_as_it_found_it() -> None:
    model = build_model(tiny_config(), seed=0)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    first = evaluate(model, stream(), CONTEXT, batches=2, batch_size=4, seed=1)
    assert evaluate(model, stream(), CONTEXT, batches=2, batch_size=4, seed=1) == first
    assert evaluate(model, stream(), CONTEXT, batches=2, batch_size=4, seed=2) != first
    assert model.training
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters())


def test_a_full_pass_of_one_window_is_the_models_cross_entropy() -> None:
    model = memorised_model()
    ids = stream()[:CONTEXT + 1]
    expected = float(model(ids[None, :-1], ids[None, 1:]).cross_entropy.detach())
    assert evaluate_all(model, ids, CONTEXT) == pytest.approx(expected, rel=1e-6)


def test_a_full_pass_predicts_every_token_once_whatever_the_batch() -> None:
    ids = stream()[:5 * CONTEXT + 4]  # five full windows and a tail of three targets
    targets = torch.cat([y.reshape(-1) for _, y in consecutive_windows(ids, CONTEXT, batch_size=2)])
    assert torch.equal(targets, ids[1:])
    model = memorised_model()
    assert evaluate_all(model, ids, CONTEXT, batch_size=1) == pytest.approx(
        evaluate_all(model, ids, CONTEXT, batch_size=64), rel=1e-6)


def test_evaluation_refuses_a_stream_with_nothing_to_predict() -> None:
    model = build_model(tiny_config(), seed=0)
    with pytest.raises(ValueError, match="nothing to predict"):
        evaluate_all(model, stream()[:1], CONTEXT)
    with pytest.raises(ValueError, match="no window of 16 tokens"):
        evaluate(model, stream()[:CONTEXT], CONTEXT, batches=1, batch_size=1, seed=0)


def test_bits_are_nats_over_ln_2() -> None:
    assert bits_per_token(3 * math.log(2)) == pytest.approx(3.0)
    assert bits_per_token(1.88) == pytest.approx(2.712, abs=1e-3)
