"""Validators' quality scores combined (``lm/quality/judge.py`` over ``verify/quality_rule.py``): scores in
micro-units, the median, the misjudging flag, a report that is no number, the threshold and its calibration, the
judge model's band, the receipt's section, and bad arguments refused by name. The scorer is the real relevance
scorer on the tiny encoder."""

from __future__ import annotations

import json
import math

import pytest

from bmoe.lm.quality.judge import QualityJudge, QualityValidator, calibrate_threshold, with_quality
from bmoe.lm.quality.llm_judge import JudgeAnswer
from bmoe.lm.quality.scorers import FixedReport, RelevanceScorer
from bmoe.lm.quality.sentence_encoder import read_sentence_encoder
from bmoe.verify.quality_rule import quality_ruling, to_units
from tests.quality.tiny_encoder import write_tiny_encoder

PROMPT = "What is the capital of France?"
ANSWER = "The capital of France is Paris."


@pytest.fixture(scope="module")
def relevance(tmp_path_factory: pytest.TempPathFactory) -> RelevanceScorer:
    return RelevanceScorer(read_sentence_encoder(write_tiny_encoder(tmp_path_factory.mktemp("tiny")), "tiny"))


class CountingScorer:
    """A scorer that reports ``value`` and counts its calls (to see a shared scorer computed once)."""

    def __init__(self, value: float, name: str = "counting") -> None:
        self.value, self.name, self.calls = value, name, 0

    def __call__(self, prompt_text: str, completion_text: str) -> float:
        self.calls += 1
        return self.value


def test_the_relevance_score_is_a_cosine_the_same_every_time_and_zero_for_no_answer(
        relevance: RelevanceScorer) -> None:
    score = relevance(PROMPT, ANSWER)
    assert -1 <= score <= 1 and score == relevance(PROMPT, ANSWER)
    assert math.isclose(relevance(PROMPT, PROMPT), 1.0, abs_tol=1e-6)
    assert relevance(PROMPT, "  ") == 0.0 and relevance(PROMPT, "") == 0.0
    assert relevance.name == "relevance/tiny"


def test_honest_validators_agree_and_a_lazy_one_far_from_the_median_is_flagged_misjudging(
        relevance: RelevanceScorer) -> None:
    judge = QualityJudge([QualityValidator(f"v{i}", relevance) for i in range(3)]
                         + [QualityValidator("lazy", FixedReport(0.99))])
    verdict = judge.score(PROMPT, ANSWER)
    honest = to_units(relevance(PROMPT, ANSWER))
    assert verdict.units == {"v0": honest, "v1": honest, "v2": honest, "lazy": 990_000}
    assert verdict.scores["lazy"] == 0.99 and verdict.scores["v0"] == honest / 1e6
    assert verdict.median == honest and verdict.misjudging == ("lazy",)
    assert verdict.flag == "uncalibrated" and verdict.scorer == "relevance/tiny"


def test_the_median_outvotes_a_minority_and_an_even_count_takes_the_floor_of_the_middle_two() -> None:
    def median_and_far(scores: dict[str, int | None], tolerance: int) -> tuple[int | None, tuple[str, ...]]:
        ruling = quality_ruling(scores, tolerance, None, None)
        return ruling.median, ruling.misjudging

    assert median_and_far({"a": 500_000, "b": 520_000, "c": 900_000}, 50_000) == (520_000, ("c",))
    assert median_and_far({"a": 200_000, "b": 400_000, "c": 600_000, "d": 800_000}, 150_000) == (500_000, ("a", "d"))
    assert median_and_far({"a": 500_000, "b": 500_001}, 0) == (500_000, ("b",))  # the floor of 500_000.5
    assert median_and_far({"a": -3, "b": 0}, 0) == (-2, ("a", "b"))  # a floor, not a truncation
    assert median_and_far({"a": None}, 0) == (None, ("a",))


def test_a_report_that_is_no_finite_number_is_misjudging_and_left_out_of_the_median() -> None:
    judge = QualityJudge([QualityValidator("a", CountingScorer(0.4)), QualityValidator("b", CountingScorer(0.6)),
                          QualityValidator("nan", CountingScorer(math.nan)),
                          QualityValidator("text", CountingScorer("high")),  # type: ignore[arg-type]
                          QualityValidator("huge", CountingScorer(1e12))])  # past what the ledger records exactly
    verdict = judge.score(PROMPT, ANSWER)
    assert verdict.median_score == 0.5 and verdict.scores["nan"] is None and verdict.scores["text"] is None
    assert verdict.scores["huge"] is None
    assert set(verdict.misjudging) == {"a", "b", "nan", "text", "huge"}  # 0.1 from the median, past 0.02
    nothing = QualityJudge([QualityValidator("nan", CountingScorer(math.inf))]).score(PROMPT, ANSWER)
    assert nothing.median is None and nothing.flag == "unscored" and nothing.misjudging == ("nan",)


def test_validators_sharing_a_scorer_compute_it_once() -> None:
    shared, own = CountingScorer(0.7), CountingScorer(0.7)
    judge = QualityJudge([QualityValidator("a", shared), QualityValidator("b", shared), QualityValidator("c", own)])
    judge.score(PROMPT, ANSWER)
    assert (shared.calls, own.calls) == (1, 1)


def test_the_threshold_flags_a_median_below_it_low() -> None:
    judge = QualityJudge([QualityValidator("a", CountingScorer(0.3))], threshold=0.31)
    assert judge.score(PROMPT, ANSWER).flag == "low"
    assert judge.with_threshold(0.3).score(PROMPT, ANSWER).flag == "ok"


class Answering:
    """A fallback judge that answers ``answer`` and counts its calls (the real model's decision is tested in
    test_llm_judge.py)."""

    def __init__(self, answer: str) -> None:
        self.answer, self.calls = answer, 0

    def __call__(self, prompt_text: str, completion_text: str) -> JudgeAnswer:
        self.calls += 1
        return JudgeAnswer("stand-in", self.answer, 1 if self.answer == "yes" else -1, 0)


def test_within_the_band_the_judge_decides_and_outside_it_is_not_asked() -> None:
    for answer, flag in (("yes", "ok"), ("no", "low")):
        fallback = Answering(answer)
        judge = QualityJudge([QualityValidator("a", CountingScorer(0.30))], threshold=0.32, band=0.05,
                             fallback=fallback)
        verdict = judge.score(PROMPT, ANSWER)  # 0.02 below the threshold: unsure
        assert (verdict.flag, fallback.calls, verdict.judge.answer) == (flag, 1, answer)
        assert verdict.section()["judge"] == {"model": "stand-in", "answer": answer, "margin": verdict.judge.margin,
                                              "bias": 0}
        far = judge.with_threshold(0.5).score(PROMPT, ANSWER)  # 0.2 below: sure
        assert (far.flag, fallback.calls, far.judge) == ("low", 1, None)
    edge = QualityJudge([QualityValidator("a", CountingScorer(0.25))], threshold=0.3, band=0.05,
                        fallback=Answering("yes"))
    assert edge.score(PROMPT, ANSWER).judge is not None  # the band's edge is inside it


def test_the_threshold_is_the_percentile_of_the_honest_scores() -> None:
    np = pytest.importorskip("numpy")
    scores = [0.61, 0.2, 0.75, 0.43, 0.58, 0.66, 0.39]
    for percentile in (0, 5, 50, 97.5, 100):
        assert math.isclose(calibrate_threshold(scores, percentile), float(np.percentile(scores, percentile)))
    assert calibrate_threshold([0.4]) == 0.4
    flagged = sum(score < calibrate_threshold(scores, 50) for score in scores)
    assert flagged == 3  # below the median of seven: three


def test_the_verdict_is_the_receipts_verification_quality_section_in_json(relevance: RelevanceScorer) -> None:
    judge = QualityJudge([QualityValidator("v0", relevance), QualityValidator("lazy", FixedReport(1.0))],
                         threshold=0.0)
    verdict = judge.score(PROMPT, ANSWER)
    verification = {"mode": "b-moe", "verified": True, "calls": 240}
    receipt_section = with_quality(verification, verdict)
    assert verification == {"mode": "b-moe", "verified": True, "calls": 240}  # untouched
    quality = json.loads(json.dumps(receipt_section))["quality"]
    assert quality == {"heuristic": True, "scorer": "relevance/tiny", "scores": verdict.scores,
                       "median": verdict.median / 1e6, "threshold": 0.0, "flag": verdict.flag,
                       "misjudging": list(verdict.misjudging), "judge": None}
    assert with_quality(None, verdict) == {"quality": verdict.section()}


@pytest.mark.parametrize(("make", "message"), [
    (lambda s: QualityJudge([]), "validators must name at least one"),
    (lambda s: QualityJudge([QualityValidator("a", s), QualityValidator("a", s)]), "distinct non-empty names"),
    (lambda s: QualityJudge([QualityValidator("", s)]), "distinct non-empty names"),
    (lambda s: QualityJudge([QualityValidator("a", s)], tolerance=-0.1), "tolerance must be"),
    (lambda s: QualityJudge([QualityValidator("a", s)], tolerance=math.nan), "tolerance must be"),
    (lambda s: QualityJudge([QualityValidator("a", s)], threshold=math.inf), "threshold must be"),
    (lambda s: QualityJudge([QualityValidator("a", s)], band=0.1), "band and fallback go together"),
    (lambda s: QualityJudge([QualityValidator("a", s)], band=-0.1, fallback=Answering("yes")), "band must be"),
    (lambda s: QualityJudge([QualityValidator("a", s)]).score(b"x", ANSWER), "prompt_text must be a str"),
    (lambda s: QualityJudge([QualityValidator("a", s)]).score(PROMPT, None), "completion_text must be a str"),
    (lambda s: s(PROMPT, 3), "completion_text must be a str, got int"),
    (lambda s: FixedReport(math.nan), "value must be a finite number"),
    (lambda s: calibrate_threshold([]), "honest_scores must be one or more finite numbers"),
    (lambda s: calibrate_threshold([0.1, math.nan]), "honest_scores must be one or more finite numbers"),
    (lambda s: calibrate_threshold([0.1], 101), "percentile must be a number in"),
])
def test_bad_arguments_are_refused_by_name(relevance: RelevanceScorer, make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(relevance)
