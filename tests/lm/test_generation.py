"""Generation: deterministic per seed, greedy is the argmax step by step, bad arguments are refused."""

from __future__ import annotations

import pytest
import torch

from bmoe.lm.generation import generate
from bmoe.lm.model import build_model
from tests.lm.tiny_lm import CONTEXT, TEXT, encode, memorised_model, tiny_config


def test_a_seed_fixes_the_sample_and_another_seed_changes_it() -> None:
    model = build_model(tiny_config(), seed=0)
    prompt = encode("to be")
    first = generate(model, prompt, 30, temperature=1.0, seed=7)
    assert len(first) == 30 and all(0 <= t < tiny_config().vocab_size for t in first)
    assert generate(model, prompt, 30, temperature=1.0, seed=7) == first
    assert generate(model, prompt, 30, temperature=1.0, seed=8) != first


def test_greedy_is_the_argmax_of_the_models_logits_at_every_step_past_the_context() -> None:
    model = memorised_model()
    prompt = encode("that is the ")
    new = generate(model, prompt, CONTEXT + 8, temperature=0)  # the window slides past the context
    tokens = list(prompt)
    with torch.no_grad():
        for produced in new:
            logits = model(torch.tensor([tokens[-CONTEXT:]])).logits[0, -1]  # (V,)
            assert produced == int(torch.argmax(logits))
            tokens.append(produced)
    assert generate(model, prompt, CONTEXT + 8, temperature=1.0, top_k=1, seed=3) == new  # top-1 is greedy
    assert generate(model, prompt, CONTEXT + 8, temperature=1e-30, seed=3) == new  # the limit of a cold sample


def test_a_model_that_memorised_the_text_continues_it() -> None:
    prompt = "to be, or not"
    continuation = generate(memorised_model(), encode(prompt), 20, temperature=0)
    assert continuation == encode(TEXT[len(prompt):len(prompt) + 20])


def test_top_k_draws_only_among_the_k_likeliest_tokens() -> None:
    model = build_model(tiny_config(), seed=0)
    prompt = encode("o")
    with torch.no_grad():
        likeliest = set(torch.topk(model(torch.tensor([prompt])).logits[0, -1], 3).indices.tolist())
    firsts = {generate(model, prompt, 1, temperature=5.0, top_k=3, seed=seed)[0] for seed in range(40)}
    assert firsts <= likeliest and len(firsts) > 1


@pytest.mark.parametrize(("prompt", "changes", "message"), [
    ([], {}, "prompt is empty"),
    ([0, 99], {}, "prompt token 99 is not in the vocabulary"),
    ([-1], {}, "prompt token -1 is not in the vocabulary"),
    ([0], {"temperature": -0.5}, "temperature must be a finite number >= 0"),
    ([0], {"temperature": float("nan")}, "temperature must be a finite number >= 0"),
    ([0], {"top_k": 0}, "top_k must be an integer in"),
    ([0], {"top_k": 10_000}, "top_k must be an integer in"),
    ([0], {"max_new_tokens": -1}, "max_new_tokens must be an integer >= 0"),
])
def test_generate_refuses_bad_arguments_naming_the_problem(prompt: list[int], changes: dict[str, object],
                                                            message: str) -> None:
    arguments: dict[str, object] = {"max_new_tokens": 3, **changes}
    with pytest.raises(ValueError, match=message):
        generate(build_model(tiny_config(), seed=0), prompt, **arguments)  # type: ignore[arg-type]
