"""Sampling: a seed fixes the tokens and another seed changes them; top-k and top-p draw only among the tokens
they keep; stop strings, the end-of-sequence token and max_tokens end a request as the OpenAI API does; bad
settings are refused naming the setting."""

from __future__ import annotations

import pytest
import torch

from bmoe.lm.decoding.engine import DecodingEngine, complete
from bmoe.lm.decoding.sampling import SamplingError, SamplingParams, filtered_probabilities, sample_token
from bmoe.lm.decoding.stop_text import streamable_length
from bmoe.lm.model import build_model
from tests.lm.decoding_helpers import decode, run_all
from tests.lm.tiny_lm import TEXT, encode, memorised_model, tiny_config


def test_a_seed_fixes_the_tokens_and_another_seed_changes_them() -> None:
    model = build_model(tiny_config(), seed=0)
    params = SamplingParams(max_tokens=30, temperature=1.0, seed=7)
    first = complete(model, encode("to be"), params).tokens
    assert len(first) == 30
    assert complete(model, encode("to be"), params).tokens == first
    others = {tuple(complete(model, encode("to be"), SamplingParams(max_tokens=30, seed=s)).tokens) for s in (8, 9)}
    assert tuple(first) not in others and len(others) == 2


def _logits(seed: int) -> torch.Tensor:
    return torch.randn(40, generator=torch.Generator().manual_seed(seed)) * 2  # (V,)


def test_top_k_draws_only_among_the_k_likeliest() -> None:
    logits = _logits(0)
    likeliest = set(torch.topk(logits, 3).indices.tolist())
    drawn = {sample_token(logits, SamplingParams(temperature=3.0, top_k=3, seed=s), 0) for s in range(60)}
    assert drawn == likeliest
    assert sample_token(logits, SamplingParams(temperature=3.0, top_k=1, seed=1), 0) == int(torch.argmax(logits))


def test_top_p_keeps_the_smallest_set_of_likeliest_tokens_reaching_p() -> None:
    logits = _logits(1)
    probabilities = torch.softmax(logits.double(), dim=-1)
    ordered = torch.argsort(probabilities, descending=True)
    mass = torch.cumsum(probabilities[ordered], dim=-1)
    p = float(mass[3] + mass[4]) / 2  # reached by the 5 likeliest tokens, not by 4
    nucleus = set(ordered[:5].tolist())
    kept = filtered_probabilities(logits, SamplingParams(top_p=p))
    assert set(torch.nonzero(kept).flatten().tolist()) == nucleus
    torch.testing.assert_close(kept[ordered[:5]], probabilities[ordered[:5]] / mass[4])
    drawn = {sample_token(logits, SamplingParams(top_p=p, seed=s), 0) for s in range(200)}
    assert drawn == nucleus
    assert {sample_token(logits, SamplingParams(top_p=1e-9, temperature=2.0, seed=s), 0)
            for s in range(20)} == {int(ordered[0])}  # a tiny p keeps the likeliest token alone


def test_a_draw_depends_on_the_seed_and_position_only() -> None:
    logits = _logits(2)
    params = SamplingParams(seed=11)
    draws = [sample_token(logits, params, position) for position in range(50)]
    assert draws == [sample_token(logits, params, position) for position in range(50)]
    assert len(set(draws)) > 5
    assert draws != [sample_token(logits, SamplingParams(seed=12), position) for position in range(50)]


def test_a_stop_string_ends_the_text_before_it_and_the_stream_never_shows_it() -> None:
    model, prompt = memorised_model(), "to be, or not"
    free = complete(model, encode(prompt), SamplingParams(max_tokens=20, temperature=0), decode).text
    assert free == TEXT[len(prompt):len(prompt) + 20]  # " to be, that is the "
    engine = DecodingEngine(model, decode=decode)
    request = engine.submit(encode(prompt), SamplingParams(max_tokens=20, temperature=0, stop=("that", "zz")))
    events = list(engine.events())
    result = engine.result(request)
    assert result.text == free[:free.index("that")] and result.finish_reason == "stop"
    assert decode(result.tokens).endswith("that")  # the tokens keep the one that completed the stop
    shown = [""]
    for event in events:
        shown.append(shown[-1] + event.text)
    assert shown[-1] == result.text and all(result.text.startswith(text) for text in shown)  # never past the cut
    assert [event.text for event in events[-4:]] == ["", "", "", ""]  # "t", "h", "a" held back; "t" completes it
    assert [e.finish_reason for e in events] == [None] * (len(events) - 1) + ["stop"]


def test_the_end_of_sequence_token_and_max_tokens_end_a_request() -> None:
    model, prompt = memorised_model(), encode("to be, or not")
    free = complete(model, prompt, SamplingParams(max_tokens=12, temperature=0), decode)
    assert free.finish_reason == "length" and len(free.tokens) == 12
    comma = encode(",")[0]
    ended = complete(model, prompt, SamplingParams(max_tokens=12, temperature=0, eos_token_id=comma), decode)
    at = free.tokens.index(comma)
    assert ended.tokens == free.tokens[:at + 1] and ended.finish_reason == "stop"
    assert ended.text == decode(free.tokens[:at])  # the end-of-sequence token is not text
    none = run_all(DecodingEngine(model, decode=decode), [(prompt, SamplingParams(max_tokens=0))])[0]
    assert none.tokens == [] and none.finish_reason == "length"


def test_a_stream_holds_back_a_tail_that_may_begin_a_stop_string_or_a_character() -> None:
    assert streamable_length("hello wor", ("world",)) == len("hello ")
    assert streamable_length("hello wor", ("xyz",)) == len("hello wor")
    assert streamable_length("caf\ufffd", ()) == 3


@pytest.mark.parametrize(("changes", "message"), [
    ({"temperature": -0.5}, "temperature must be a finite number >= 0"),
    ({"temperature": float("inf")}, "temperature must be a finite number >= 0"),
    ({"top_p": 0}, r"top_p must be a number in \(0, 1\]"),
    ({"top_p": 1.5}, r"top_p must be a number in \(0, 1\]"),
    ({"top_k": 0}, "top_k must be an integer >= 1"),
    ({"max_tokens": -1}, "max_tokens must be an integer >= 0"),
    ({"stop": "a"}, "stop must be a tuple of non-empty strings"),
    ({"stop": ("",)}, "stop must be a tuple of non-empty strings"),
    ({"eos_token_id": -2}, "eos_token_id must be an integer >= 0"),
    ({"seed": 1.5}, "seed must be an integer"),
])
def test_bad_settings_are_refused_naming_the_setting(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SamplingError, match=message):
        SamplingParams(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("prompt", "params", "message"), [
    ([], SamplingParams(), "prompt is empty"),
    ([0, 99], SamplingParams(), "prompt token 99 is not in the vocabulary"),
    ([0], SamplingParams(top_k=10_000), "top_k must be an integer in"),
    ([0], SamplingParams(eos_token_id=10_000), "eos_token_id 10000 is not in the vocabulary"),
    ([0], SamplingParams(stop=("x",)), "stop strings need the engine's decode function"),
])
def test_a_request_the_model_cannot_serve_is_refused(prompt: list[int], params: SamplingParams, message: str) -> None:
    with pytest.raises(SamplingError, match=message):
        DecodingEngine(build_model(tiny_config(), seed=0)).submit(prompt, params)
