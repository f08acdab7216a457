"""Continuous batching: sequences of different lengths decoded together get, bit for bit, the tokens and logits
each gets alone; each step calls the experts once per layer for the whole batch; requests join between steps
and leave when done; the stream carries each request's tokens in order."""

from __future__ import annotations

import torch

from bmoe.lm.decoding.engine import DecodingEngine, complete
from bmoe.lm.decoding.expert_calls import ModelExperts
from bmoe.lm.decoding.kv_cache import KVCache
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.decoding.step import Segment, forward_step
from bmoe.lm.model import build_model
from tests.lm.decoding_helpers import CountingExperts, decode, run_all
from tests.lm.tiny_lm import CONTEXT, encode, tiny_config

PROMPTS = ["to be", "t", "that is the q", "or not to be, that"]  # 5, 1, 13 and 18 tokens: the last slides
SETTINGS = [SamplingParams(max_tokens=12, temperature=0), SamplingParams(max_tokens=20, temperature=1.0, seed=3),
            SamplingParams(max_tokens=7, temperature=0.7, top_k=5, seed=4),
            SamplingParams(max_tokens=9, top_p=0.9, seed=5)]


def test_sequences_batched_together_get_the_tokens_each_gets_alone() -> None:
    model = build_model(tiny_config(), seed=2)
    requests = [(encode(p), s) for p, s in zip(PROMPTS, SETTINGS, strict=True)]
    alone = [complete(model, prompt, params, decode).tokens for prompt, params in requests]
    together = run_all(DecodingEngine(model, decode=decode, max_batch=4), requests)
    assert [c.tokens for c in together] == alone
    assert [len(c.tokens) for c in together] == [12, 20, 7, 9]


def test_a_batched_steps_logits_have_the_bits_of_each_sequence_alone() -> None:
    config = tiny_config()
    model = build_model(config, seed=6).eval()
    caller = ModelExperts(model)

    def segment(sequence: int, text: str) -> Segment:
        cache = KVCache(config.num_hidden_layers, config.num_key_value_heads, config.head_dim, CONTEXT,
                        torch.float32)
        return Segment(sequence, torch.tensor(encode(text)), 0, 0, len(text), cache)

    texts = ["to be", "t", "that is the q"]
    alone = [forward_step(model, [segment(i, text)], caller)[0] for i, text in enumerate(texts)]
    together = forward_step(model, [segment(i, text) for i, text in enumerate(texts)], caller)  # (3, V)
    for row, reference in zip(together, alone, strict=True):
        assert torch.equal(row, reference)


def test_each_step_calls_the_experts_once_per_layer_for_the_whole_batch() -> None:
    model = build_model(tiny_config(), seed=2)
    caller = CountingExperts(model)
    engine = DecodingEngine(model, caller, max_batch=4)
    for prompt in PROMPTS[:3]:
        engine.submit(encode(prompt), SamplingParams(max_tokens=6, temperature=0))
    steps = 0
    while engine.busy:
        engine.step()
        steps += 1
    layers = model.config.num_hidden_layers
    assert steps == 6 and [layer for layer, _ in caller.calls] == list(range(layers)) * steps


def test_requests_join_between_steps_wait_for_room_and_leave_when_done() -> None:
    model = build_model(tiny_config(), seed=2)
    alone = [complete(model, encode(p), s).tokens for p, s in zip(PROMPTS, SETTINGS, strict=True)]
    engine = DecodingEngine(model, max_batch=2)
    first = engine.submit(encode(PROMPTS[0]), SETTINGS[0])
    tokens: dict[int, list[int]] = {first: []}
    for event in engine.step() + engine.step():
        tokens[event.request].append(event.token)
    late = [engine.submit(encode(p), s) for p, s in zip(PROMPTS[1:], SETTINGS[1:], strict=True)]
    tokens.update({request: [] for request in late})
    for event in engine.events():
        assert len(engine._running) <= 2
        tokens[event.request].append(event.token)
        assert event.index == len(tokens[event.request]) - 1
    assert [tokens[request] for request in [first, *late]] == alone
    assert not engine.busy and engine.result(late[-1]).finish_reason == "length"


def test_each_requests_callback_gets_its_own_events_as_the_engine_steps() -> None:
    model = build_model(tiny_config(), seed=2)
    streams: dict[int, list[str]] = {0: [], 1: []}
    engine = DecodingEngine(model, decode=decode)
    ids = [engine.submit(encode(p), s, on_event=lambda e, i=i: streams[i].append(e.text))
           for i, (p, s) in enumerate(zip(PROMPTS[:2], SETTINGS[:2], strict=True))]
    all_events = list(engine.events())
    assert ["".join(streams[i]) for i in range(2)] == [engine.result(request).text for request in ids]
    assert [len(streams[i]) for i in range(2)] == [sum(e.request == request for e in all_events) for request in ids]
