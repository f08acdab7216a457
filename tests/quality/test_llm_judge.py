"""The judge language model's yes/no (``lm/quality/llm_judge.py``): the decision on one logits row (the best yes
against the best no, a bias, a tie is no), the question put to a tiny random language model and its answer read
from that model's own next-token logits, the same every time, a long pair cut to the context's end, bad token ids
refused; the judge deciding a quality verdict within the band; and (slow) SmolLM2-135M-Instruct as the judge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from bmoe.lm.quality.judge import QualityJudge, QualityValidator
from bmoe.lm.quality.llm_judge import QUESTION, LanguageModelJudge, judge_decision, single_token_ids
from bmoe.lm.quality.scorers import FixedReport
from tests.lm.tiny_lm import one_thread
from tests.lm.tiny_models import tiny_model

YES, NO = (3, 7), (11,)
CONTEXT = 512  # the question and both texts fit


def judge_model(context: int = CONTEXT) -> torch.nn.Module:
    return tiny_model(max_position_embeddings=context)


def char_ids(text: str) -> list[int]:
    """A tokenizer for the tiny model's 50 ids: one id a character."""
    return [ord(character) % 50 for character in text]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_thread():  # on shared cores a second thread's spin-waits cost what the fast tier counts
        yield


@pytest.fixture(scope="module")
def judge() -> LanguageModelJudge:
    return LanguageModelJudge(judge_model(), char_ids, YES, NO, "tiny")


def test_the_decision_is_the_best_yes_logit_against_the_best_no_and_a_tie_is_no() -> None:
    logits = torch.zeros(20)
    logits[3], logits[7], logits[11] = 0.5, 1.25, 1.0
    assert judge_decision(logits, YES, NO, "m").to_json() == {"model": "m", "answer": "yes", "margin": 250_000,
                                                            "bias": 0}
    assert judge_decision(logits, YES, NO, "m", bias=250_000).answer == "no"  # a tie with the bias
    assert judge_decision(logits, YES, NO, "m", bias=249_999).answer == "yes"
    logits[11] = 1.25
    assert judge_decision(logits, YES, NO, "m").answer == "no" and judge_decision(logits, YES, NO, "m").margin == 0
    with pytest.raises(ValueError, match="one logits row"):
        judge_decision(torch.zeros(2, 20), YES, NO, "m")


def test_the_tiny_models_answer_is_read_from_its_own_next_token_logits(judge: LanguageModelJudge) -> None:
    prompt, completion = "what?", "so."
    answer = judge(prompt, completion)
    ids = char_ids(QUESTION.format(prompt=prompt, completion=completion))
    with torch.no_grad():
        logits = judge_model()(torch.tensor([ids])).logits[0, -1]  # (V,)
    margin = float(logits[list(YES)].max() - logits[list(NO)].max())
    assert answer.margin == round(margin * 1e6) and answer.answer == ("yes" if answer.margin > 0 else "no")
    assert judge(prompt, completion) == answer  # no sampling: the same answer every time
    swapped = LanguageModelJudge(judge_model(), char_ids, NO, YES[:1], "tiny")(prompt, completion)
    assert swapped.margin == round(float(logits[NO[0]] - logits[YES[0]]) * 1e6)
    assert judge(prompt, completion + " more") != answer  # the answer reads the completion


def test_a_pair_longer_than_the_context_is_cut_to_its_end() -> None:
    short = LanguageModelJudge(judge_model(32), char_ids, YES, NO, "tiny")
    assert short("what?" * 50, "so." * 50) == short("why?", "so.")  # the last 32 characters: the question's end


def test_a_calibrated_bias_moves_the_line(judge: LanguageModelJudge) -> None:
    answer = judge("what?", "so.")
    above = LanguageModelJudge(judge_model(), char_ids, YES, NO, "tiny", bias=answer.margin / 1e6 - 0.01)
    below = LanguageModelJudge(judge_model(), char_ids, YES, NO, "tiny", bias=answer.margin / 1e6 + 0.01)
    assert above("what?", "so.").answer == "yes" and below("what?", "so.").answer == "no"


def test_within_the_band_the_tiny_judge_decides_the_flag(judge: LanguageModelJudge) -> None:
    answer = judge("what?", "so.")
    quality = QualityJudge([QualityValidator("a", FixedReport(0.30))], threshold=0.31, band=0.05, fallback=judge)
    verdict = quality.score("what?", "so.")
    assert verdict.judge == answer and verdict.flag == ("ok" if answer.answer == "yes" else "low")


@pytest.mark.parametrize(("yes", "no", "message"), [
    ((), NO, "yes_ids must be one or more"), (YES, (50,), "no_ids must be one or more token ids below 50"),
    ((3,), (3,), "both yes and no"), ((True,), NO, "yes_ids"),
])
def test_bad_token_ids_are_refused_by_name(yes: tuple[int, ...], no: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LanguageModelJudge(judge_model(32), char_ids, yes, no, "tiny")


def test_only_spellings_that_are_one_token_count() -> None:
    assert single_token_ids(char_ids, ["y", "yes", "Y", "y"]) == [ord("y") % 50, ord("Y") % 50]


@pytest.mark.slow
def test_smollm2_as_the_judge_ranks_an_off_topic_answer_lower() -> None:
    from bmoe.lm.quality.llm_judge import pretrained_judge

    smol = pretrained_judge()
    good = smol("What is the capital of France?", "The capital of France is Paris.")
    off = smol("What is the capital of France?", "Bananas are yellow and grow on trees.")
    assert len(smol.yes_ids) == len(smol.no_ids) == 4 and good.model == "smollm2-135m"
    assert off.margin < good.margin  # measured: -2.66 against -1.59 (both "no" at bias 0: docs/platform.md)
