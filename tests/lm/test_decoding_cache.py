"""Decoding with a KV cache computes what the model computes: each step's logits are the full recompute's, greedy
tokens are ``generate()``'s (past the context too), and the cache grows, cuts and refuses as it says."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bmoe.lm.config import LMConfig
from bmoe.lm.decoding.engine import complete
from bmoe.lm.decoding.expert_calls import ModelExperts
from bmoe.lm.decoding.kv_cache import KVCache
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.decoding.step import Segment, forward_step
from bmoe.lm.generation import generate
from bmoe.lm.model import build_model
from tests.lm.tiny_lm import CONTEXT, encode, memorised_model, tiny_config


def _cache(config: LMConfig) -> KVCache:
    return KVCache(config.num_hidden_layers, config.num_key_value_heads, config.head_dim,
                   config.max_position_embeddings, torch.float32)


@pytest.mark.parametrize(("tied", "kv_heads", "weighting"), [(False, 2, "softmax"), (True, 2, "softmax"),
                                                            (False, 4, "softmax"),  # 4: no grouped heads
                                                            (True, 2, "unit")])  # a MoEfied dense model's sum
def test_each_cached_steps_logits_are_the_full_recomputes(tied: bool, kv_heads: int, weighting: str) -> None:
    config = dataclasses.replace(tiny_config(tie_word_embeddings=tied), num_key_value_heads=kv_heads,
                                 router_weighting=weighting)
    model = build_model(config, seed=3).eval()
    tokens = torch.randint(0, config.vocab_size, (CONTEXT,), generator=torch.Generator().manual_seed(1))  # (P,)
    cache, caller, prompt = _cache(config), ModelExperts(model), 5
    steps = [Segment(0, tokens[:prompt], 0, 0, prompt, cache)]
    steps += [Segment(0, tokens[n:n + 1], n, n, n + 1, cache) for n in range(prompt, CONTEXT)]
    for segment in steps:
        cached = forward_step(model, [segment], caller)[0]  # (V,)
        end = segment.start + int(segment.tokens.numel())
        with torch.no_grad():
            full = model(tokens[None, :end]).logits[0, -1]  # (V,)
        torch.testing.assert_close(cached, full, rtol=1e-5, atol=1e-6)
    assert cache.length == CONTEXT


def test_a_prompt_fed_in_pieces_gives_the_logits_of_one_prefill() -> None:
    config = tiny_config()
    model = build_model(config, seed=4).eval()
    tokens = torch.tensor(encode("that is the question"))[:12]
    caller, whole = ModelExperts(model), _cache(config)
    at_once = forward_step(model, [Segment(0, tokens, 0, 0, 12, whole)], caller)[0]
    pieces = _cache(config)
    forward_step(model, [Segment(0, tokens[:7], 0, 0, 7, pieces)], caller)
    in_two = forward_step(model, [Segment(0, tokens[7:], 7, 7, 12, pieces)], caller)[0]  # a masked multi-token step
    torch.testing.assert_close(in_two, at_once, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pieces.keys[:, :, :12], whole.keys[:, :, :12], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prompt", ["to be", "that is the ", "t"])
def test_greedy_tokens_are_generates_within_and_past_the_context(prompt: str) -> None:
    for model in (memorised_model(), build_model(tiny_config(), seed=5)):
        ids = encode(prompt)
        expected = generate(model, ids, CONTEXT + 10, temperature=0)  # slides past the context
        assert complete(model, ids, SamplingParams(max_tokens=CONTEXT + 10, temperature=0)).tokens == expected


def test_the_cache_grows_by_doubling_up_to_the_context_and_cuts_back() -> None:
    cache = KVCache(layers=2, kv_heads=2, head_dim=4, context=40, dtype=torch.float32)
    for step in range(40):
        keys = torch.full((2, 1, 4), float(step))  # (Hkv, 1, hd)
        seen_keys, _ = cache.extend(0, keys, keys)
        cache.extend(1, keys, keys)
        cache.advance(1)
        assert seen_keys.shape == (2, step + 1, 4) and float(seen_keys[0, -1, 0]) == step
    assert cache.capacity == 40 and cache.length == 40
    with pytest.raises(ValueError, match="longer than the context"):
        cache.extend(0, keys, keys)
    cache.truncate(10)
    again, _ = cache.extend(0, torch.full((2, 1, 4), -1.0), torch.zeros(2, 1, 4))
    assert again.shape == (2, 11, 4) and float(again[0, 9, 0]) == 9 and float(again[0, 10, 0]) == -1
    with pytest.raises(ValueError, match="cannot truncate"):
        cache.truncate(11)
