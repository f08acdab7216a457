"""Text from a language model: autoregressive sampling, deterministic for a seed.

Each new token is drawn from the model's next-token distribution at the last position, divided by the
temperature and cut to the ``top_k`` most likely tokens (nanoGPT's ``generate``), with a ``torch.Generator``
seeded by ``seed``, so a (model, prompt, settings, seed) gives the same tokens every time; temperature 0 is greedy
(argmax, the first index on a tie). The context is the last ``max_position_embeddings`` tokens, recomputed in
full at every step, with no cache: the reference that ``lm/decoding`` (the KV-cache engine, which gives the same
greedy tokens) is tested against and benchmarked beside.

Must not know: tokenizers, the protocol.
"""

from __future__ import annotations

import math

import torch

from bmoe.lm.evaluation import inference
from bmoe.lm.model import MoETransformer


def check_sampling(vocab_size: int, temperature: float, top_k: int | None) -> None:
    """Refuse a negative or non-finite temperature and a ``top_k`` outside [1, vocab_size]."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= vocab_size):
        raise ValueError(f"top_k must be an integer in [1, {vocab_size}] (the vocabulary size), got {top_k!r}")


def next_token(logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator) -> int:
    """One token from next-token logits (V,): argmax at temperature 0, else a draw from
    softmax(logits / temperature) restricted to the ``top_k`` largest logits (all if None)."""
    logits = logits.float()
    if temperature == 0:
        return int(torch.argmax(logits))
    logits = (logits - logits.max()) / temperature  # the same softmax; no inf - inf at a tiny temperature
    if top_k is not None:
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probabilities = torch.softmax(logits, dim=-1)  # (V,)
    return int(torch.multinomial(probabilities, 1, generator=generator))


def generate(model: MoETransformer, prompt_ids: list[int], max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, seed: int = 0) -> list[int]:
    """``max_new_tokens`` tokens following ``prompt_ids`` (the new ones only), sampled as the module says."""
    vocab_size, context = model.config.vocab_size, model.config.max_position_embeddings
    if not prompt_ids:
        raise ValueError("the prompt is empty: give at least one token")
    bad = [t for t in prompt_ids if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < vocab_size]
    if bad:
        raise ValueError(f"prompt token {bad[0]!r} is not in the vocabulary [0, {vocab_size})")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    check_sampling(vocab_size, temperature, top_k)
    generator = torch.Generator().manual_seed(seed)
    tokens = list(prompt_ids)
    with inference(model):
        for _ in range(max_new_tokens):
            window = torch.tensor([tokens[-context:]], dtype=torch.int64)  # (1, T), T <= context
            logits = model(window).logits[0, -1]  # (V,)
            tokens.append(next_token(logits, temperature, top_k, generator))
    return tokens[len(prompt_ids):]
