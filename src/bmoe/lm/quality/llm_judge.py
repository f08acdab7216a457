"""Owns the quality layer's fallback when the scorer is unsure (PolyLink's LLM-as-a-judge): a causal language model
is asked one fixed yes/no question about a (prompt, completion) pair, and its answer is read from the logits of
its next token after the question (the largest logit among the spellings of yes less the largest among those of
no, the *margin*, against a *bias*): one forward pass, no sampling, so the same model, question and texts give the
same answer on every machine that computes the same logits. A heuristic like the scorer: a small model's opinion
of relevance, not a proof of anything. SmolLM2-135M leans to no (its margin was negative on every pair tried,
good answers included: docs/platform.md), so its bias is worth calibrating on honest responses
(:func:`~bmoe.lm.quality.judge.calibrate_threshold` over their margins).

:class:`LanguageModelJudge` takes any ``MoETransformer`` with a function turning the question into token ids;
:func:`pretrained_judge` builds one from a pretrained chat model (SmolLM2-135M-Instruct, ``lm/pretrained``), its
chat template around the question. :func:`judge_decision` is the decision on one logits row.

Must not know: validators, the median, the ledger, serving.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from bmoe.lm.model import MoETransformer
from bmoe.verify.quality_rule import judge_answer, to_units

QUESTION = ("Here is a question and an answer to it.\n\nQuestion: {prompt}\n\nAnswer: {completion}\n\n"
            "Is the answer a relevant and sensible reply to the question? Reply with yes or no.")
YES_SPELLINGS = ("yes", "Yes", " yes", " Yes")
NO_SPELLINGS = ("no", "No", " no", " No")
DEFAULT_JUDGE = "smollm2-135m"


@dataclass(frozen=True)
class JudgeAnswer:
    """The judge's answer about one response: ``yes`` when its margin is above its bias."""

    model: str
    answer: str  # "yes" or "no"
    margin: int  # the best yes logit less the best no logit, in micro-units (verify/quality_rule.py)
    bias: int = 0  # micro-units: yes needs a margin above it

    def to_json(self) -> dict[str, object]:
        return {"model": self.model, "answer": self.answer, "margin": self.margin, "bias": self.bias}


def judge_decision(logits: torch.Tensor, yes_ids: Sequence[int], no_ids: Sequence[int], model: str,
                   bias: int = 0) -> JudgeAnswer:
    """The answer that next-token ``logits`` (V,) give: the margin of the best yes over the best no, rounded to
    micro-units, against ``bias`` (micro-units) decides (``verify/quality_rule.judge_answer``: a tie is no)."""
    if logits.dim() != 1 or not yes_ids or not no_ids:
        raise ValueError("judge_decision needs one logits row (V,) and at least one yes and one no token id")
    margin = to_units(float(logits[list(yes_ids)].max()) - float(logits[list(no_ids)].max()))
    return JudgeAnswer(model, judge_answer(margin, bias), margin, bias)


class LanguageModelJudge:
    """Asks ``model`` :data:`QUESTION` about each response; ``question_ids`` turns the question's text into the
    token ids the model reads (a chat template around it, for a chat model); ``bias``: the margin (in logits) a yes
    must beat."""

    def __init__(self, model: MoETransformer, question_ids: Callable[[str], list[int]], yes_ids: Sequence[int],
                 no_ids: Sequence[int], name: str, bias: float = 0.0) -> None:
        vocabulary = model.config.vocab_size
        for label, ids in (("yes_ids", yes_ids), ("no_ids", no_ids)):
            if not ids or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocabulary for i in ids):
                raise ValueError(f"{label} must be one or more token ids below {vocabulary}, got {list(ids)!r}")
        if set(yes_ids) & set(no_ids):
            raise ValueError("a token id cannot spell both yes and no")
        self.model, self.question_ids, self.name = model.eval(), question_ids, name
        self.yes_ids, self.no_ids, self.bias = tuple(yes_ids), tuple(no_ids), to_units(bias)

    @torch.no_grad()
    def __call__(self, prompt_text: str, completion_text: str) -> JudgeAnswer:
        ids = self.question_ids(QUESTION.format(prompt=prompt_text, completion=completion_text))
        ids = ids[-self.model.config.max_position_embeddings:]  # a long pair: the end, where the question is
        logits = self.model(torch.tensor([ids])).logits[0, -1]  # (V,): the next token's
        return judge_decision(logits, self.yes_ids, self.no_ids, self.name, self.bias)


def single_token_ids(encode: Callable[[str], list[int]], spellings: Sequence[str]) -> list[int]:
    """The token ids of the ``spellings`` the tokenizer writes as one token, each once, in order."""
    ids: list[int] = []
    for text in spellings:
        encoded = encode(text)
        if len(encoded) == 1 and encoded[0] not in ids:
            ids.append(encoded[0])
    return ids


def pretrained_judge(name: str = DEFAULT_JUDGE, bias: float = 0.0, experts: int = 8) -> LanguageModelJudge:
    """The judge on the pretrained chat model ``name`` (fetched into the cache first if absent), the question as
    the user's message and the assistant's turn opened."""
    from bmoe.lm.pretrained import load_pretrained

    lm = load_pretrained(name, experts=experts)
    encode = lm.tokenizer.encode
    return LanguageModelJudge(lm.model, lambda text: lm.chat_prompt([{"role": "user", "content": text}]),
                              single_token_ids(encode, YES_SPELLINGS), single_token_ids(encode, NO_SPELLINGS),
                              lm.name, bias)
