"""A request's sampling settings and the draw of one token, deterministic given the request's seed.

The order is Hugging Face's and vLLM's: logits / temperature, then the ``top_k`` likeliest tokens, then the
smallest set of the likeliest whose probability reaches ``top_p`` (nucleus sampling, Holtzman et al., 2020),
then one draw. Temperature 0 is greedy: the argmax, the first index on a tie (as ``lm/generation.py``).

The draw for the token at position ``n`` of a sequence uses a generator seeded by :func:`token_seed` (the
request's seed and ``n``), not one generator advanced token after token: a token's draw depends only on (seed,
position, logits), so a sequence rolled back to position ``n`` and continued draws what it drew before, and a
replay can check any one token without replaying the others. The draw is an inverse-CDF lookup of one uniform
number in the float64 cumulative distribution.

Must not know: the model, the cache, tokenizers.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch


class SamplingError(ValueError):
    """A sampling setting out of its range; the message names the setting."""


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SamplingParams:
    """How one request samples and when it stops (the OpenAI API's names where it has them)."""

    max_tokens: int = 16  # the OpenAI API's default for completions
    temperature: float = 1.0  # 0: greedy
    top_k: int | None = None  # None: every token
    top_p: float = 1.0  # 1: every token
    stop: tuple[str, ...] = ()  # stop strings, matched on the decoded text and left out of it
    eos_token_id: int | None = None  # the model's end-of-sequence token: generating it finishes the request
    seed: int = 0  # recorded with the request; fixes every draw

    def __post_init__(self) -> None:
        if not _is_integer(self.max_tokens) or self.max_tokens < 0:
            raise SamplingError(f"max_tokens must be an integer >= 0, got {self.max_tokens!r}")
        temperature = self.temperature
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not math.isfinite(
                temperature) or temperature < 0:
            raise SamplingError(f"temperature must be a finite number >= 0, got {temperature!r}")
        if self.top_k is not None and (not _is_integer(self.top_k) or self.top_k < 1):
            raise SamplingError(f"top_k must be an integer >= 1, got {self.top_k!r}")
        top_p = self.top_p
        if isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 < top_p <= 1:
            raise SamplingError(f"top_p must be a number in (0, 1], got {top_p!r}")
        if isinstance(self.stop, str) or not all(isinstance(s, str) and s for s in self.stop):
            raise SamplingError(f"stop must be a tuple of non-empty strings, got {self.stop!r}")
        if self.eos_token_id is not None and (not _is_integer(self.eos_token_id) or self.eos_token_id < 0):
            raise SamplingError(f"eos_token_id must be an integer >= 0, got {self.eos_token_id!r}")
        if not _is_integer(self.seed):
            raise SamplingError(f"seed must be an integer, got {self.seed!r}")

    def check_vocabulary(self, vocab_size: int) -> None:
        """Refuse a ``top_k`` or ``eos_token_id`` outside a vocabulary of ``vocab_size`` tokens."""
        if self.top_k is not None and self.top_k > vocab_size:
            raise SamplingError(f"top_k must be an integer in [1, {vocab_size}] (the vocabulary size), "
                                f"got {self.top_k!r}")
        if self.eos_token_id is not None and self.eos_token_id >= vocab_size:
            raise SamplingError(f"eos_token_id {self.eos_token_id} is not in the vocabulary [0, {vocab_size})")


def token_seed(seed: int, position: int) -> int:
    """The seed of the draw of the token at ``position`` of a request seeded ``seed``: 63 bits of
    BLAKE2b("seed:position"), so neighbouring seeds and positions give unrelated streams."""
    digest = hashlib.blake2b(f"{seed}:{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def filtered_probabilities(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """The distribution (V,) float64 a token is drawn from at ``params.temperature`` > 0: softmax(logits /
    temperature) cut to the top-k and then the top-p tokens, renormalised."""
    scaled = (logits.double() - logits.max().double()) / params.temperature  # (V,); no inf - inf when cold
    if params.top_k is not None and params.top_k < scaled.numel():
        kth = torch.topk(scaled, params.top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probabilities = torch.softmax(scaled, dim=-1)  # (V,)
    if params.top_p < 1:
        ordered, order = torch.sort(probabilities, descending=True, stable=True)  # ties: the lower index first
        before = torch.cumsum(ordered, dim=-1) - ordered  # (V,) the mass of the likelier tokens
        keep = torch.zeros_like(probabilities, dtype=torch.bool)
        keep[order] = before < params.top_p  # a token is kept while the mass before it falls short of top_p
        probabilities = torch.where(keep, probabilities, torch.zeros_like(probabilities))
    return probabilities / probabilities.sum()


def sample_token(logits: torch.Tensor, params: SamplingParams, position: int) -> int:
    """The token at ``position`` of a sequence from next-token ``logits`` (V,), as the module says (on the CPU,
    wherever the logits were computed)."""
    logits = logits.detach().float().cpu()
    if params.temperature == 0:
        return int(torch.argmax(logits))
    probabilities = filtered_probabilities(logits, params)  # (V,)
    generator = torch.Generator().manual_seed(token_seed(params.seed, position))
    uniform = torch.rand((), generator=generator, dtype=torch.float64)
    cumulative = torch.cumsum(probabilities, dim=-1)  # (V,)
    index = int(torch.searchsorted(cumulative, uniform * cumulative[-1], right=True))
    return min(index, int(torch.nonzero(probabilities).max()))  # rounding at the top end stays on a kept token
