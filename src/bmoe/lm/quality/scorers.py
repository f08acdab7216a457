"""Owns what a quality score is: a number a validator gives a (prompt, completion) pair, higher for a better answer,
with no reference answer to compare against.

- :class:`RelevanceScorer`: the cosine of the prompt's and the completion's sentence embeddings
  (all-MiniLM-L6-v2, ``sentence_encoder.py``), in [-1, 1]: does the answer talk about what was asked? Chosen over
  the completion's perplexity under the served model because a validator able to run the served model's clean
  experts would simply re-compute them (that is per-expert verification, exact and cheaper to trust), and because
  it judges the text a user reads with a model independent of the one that wrote it, as PolyLink's
  cross-encoder does. A heuristic: fluent, on-topic text scores well whether or not it was computed honestly.
- :class:`FixedReport`: a validator that reports one number without reading the response (a lazy or bribed
  validator, for demonstrations and tests of the median).

Must not know: validators' names, the median, the protocol.
"""

from __future__ import annotations

import math
from typing import Protocol

from .sentence_encoder import SentenceEncoder


class Scorer(Protocol):
    """Gives a (prompt, completion) pair a score; ``name`` says which scorer (recorded with every score)."""

    name: str

    def __call__(self, prompt_text: str, completion_text: str) -> float: ...


def check_texts(prompt_text: object, completion_text: object) -> None:
    """A ValueError naming the argument that is not a str."""
    for name, value in (("prompt_text", prompt_text), ("completion_text", completion_text)):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a str, got {type(value).__name__}")


class RelevanceScorer:
    """The cosine of the prompt's and the completion's embeddings by ``encoder``; an empty completion scores 0
    (it answers nothing)."""

    def __init__(self, encoder: SentenceEncoder) -> None:
        self.encoder = encoder
        self.name = f"relevance/{encoder.name}"

    def __call__(self, prompt_text: str, completion_text: str) -> float:
        check_texts(prompt_text, completion_text)
        if not completion_text.strip():
            return 0.0
        prompt, completion = self.encoder.encode([prompt_text, completion_text])  # (d,), (d,): unit length
        return float(prompt @ completion)


class FixedReport:
    """Reports ``value`` whatever the response (a validator that does not look)."""

    def __init__(self, value: float, name: str = "fixed") -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"value must be a finite number, got {value!r}")
        self.value, self.name = float(value), name

    def __call__(self, prompt_text: str, completion_text: str) -> float:
        check_texts(prompt_text, completion_text)
        return self.value
