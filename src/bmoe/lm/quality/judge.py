"""Owns combining validators' quality scores of one response (PolyLink's TIQE): every validator scores it, each
score is taken in micro-units, and the rule of ``verify/quality_rule.py`` (the one the ledger re-computes) gives the
median, the validators further than ``tolerance`` from it (or reporting no finite number: *misjudging*), and the
flag: ``low`` when the median is below a threshold calibrated on honest responses (:func:`calibrate_threshold`),
except within ``band`` of the threshold, where the scorer is unsure and a judge language model's yes/no decides
(``llm_judge.py``; optional: without a band it is never asked).

:meth:`QualityJudge.score` returns a :class:`QualityVerdict`; its :meth:`~QualityVerdict.section` is the
``quality`` entry of a receipt's ``verification`` section (:func:`with_quality` adds it). Validators that share a
scorer object share its computation (a scorer is deterministic: each would compute the same number); a validator's
failure to give a number is a value (a misjudging report), not an exception.

Must not know: what a scorer computes, the protocol, the ledger, serving.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bmoe.verify.quality_rule import FLAGS, MAX_SCORE_UNITS, SCORE_UNITS, from_units, quality_ruling, to_units

from .llm_judge import JudgeAnswer
from .scorers import Scorer, check_texts

DEFAULT_TOLERANCE = 0.02  # honest validators give the same bits on one build; this absorbs another build's rounding
DEFAULT_PERCENTILE = 5.0  # the threshold: the 5th percentile of honest responses' scores (5 % false alarms)
FallbackJudge = Callable[[str, str], JudgeAnswer]  # (prompt text, completion text) -> the judge model's answer
__all__ = ("FLAGS", "QualityJudge", "QualityValidator", "QualityVerdict", "calibrate_threshold", "with_quality")


@dataclass(frozen=True)
class QualityValidator:
    """A validator of responses' quality: its name (an address on a ledger) and the scorer it runs."""

    name: str
    scorer: Scorer


@dataclass(frozen=True)
class QualityVerdict:
    """The validators' scores of one response combined (every number in micro-units: ``verify/quality_rule.py``)."""

    scorer: str  # the honest scorer's name (the first validator's)
    units: dict[str, int | None]  # validator -> its score in micro-units (None: no finite number)
    median: int | None  # of the reported scores; None when there is none
    misjudging: tuple[str, ...]  # validators far from the median, or with no finite score
    tolerance: int
    threshold: int | None
    band: int | None  # the judge decides within it of the threshold (None: no judge)
    judge: JudgeAnswer | None  # the judge's answer, when it was asked
    flag: str  # one of FLAGS

    @property
    def scores(self) -> dict[str, float | None]:
        return {name: from_units(value) for name, value in self.units.items()}

    @property
    def median_score(self) -> float | None:
        return from_units(self.median)

    def section(self) -> dict[str, Any]:
        """The receipt's ``verification.quality`` entry (JSON; scores as numbers, not micro-units)."""
        return {"heuristic": True, "scorer": self.scorer, "scores": self.scores, "median": self.median_score,
                "threshold": from_units(self.threshold), "flag": self.flag, "misjudging": list(self.misjudging),
                "judge": None if self.judge is None else self.judge.to_json()}


def calibrate_threshold(honest_scores: Sequence[float], percentile: float = DEFAULT_PERCENTILE) -> float:
    """The ``percentile``-th percentile of ``honest_scores`` (linear interpolation between order statistics):
    flagging below it flags about ``percentile`` % of honest responses. A ValueError names a bad argument."""
    if isinstance(percentile, bool) or not isinstance(percentile, int | float) or not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be a number in [0, 100], got {percentile!r}")
    values = sorted(honest_scores)
    if not values or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        raise ValueError(f"honest_scores must be one or more finite numbers, got {list(honest_scores)!r}")
    position = (len(values) - 1) * percentile / 100
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return float(values[low] + (values[high] - values[low]) * (position - low))


def _finite(name: str, value: object, low: float = -math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < low:
        bound = "" if low == -math.inf else f" >= {low:g}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


class QualityJudge:
    """Several validators' scores of each response, combined by the median; ``fallback`` (a judge language model)
    decides the responses whose median is within ``band`` of the threshold. A ValueError names a bad argument."""

    def __init__(self, validators: Sequence[QualityValidator], tolerance: float = DEFAULT_TOLERANCE,
                 threshold: float | None = None, band: float | None = None,
                 fallback: FallbackJudge | None = None) -> None:
        if not validators:
            raise ValueError("validators must name at least one QualityValidator")
        names = [validator.name for validator in validators]
        if len(set(names)) != len(names) or not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"validators must have distinct non-empty names, got {names!r}")
        _finite("tolerance", tolerance, 0.0)
        if threshold is not None:
            _finite("threshold", threshold)
        if band is not None:
            _finite("band", band, 0.0)
        if (band is None) != (fallback is None):
            raise ValueError("band and fallback go together: the judge model decides within the band")
        self.validators, self.tolerance, self.threshold = list(validators), float(tolerance), threshold
        self.band, self.fallback = band, fallback

    def with_threshold(self, threshold: float) -> QualityJudge:
        """The same validators (and judge), flagging below ``threshold``."""
        return QualityJudge(self.validators, self.tolerance, threshold, self.band, self.fallback)

    def score(self, prompt_text: str, completion_text: str) -> QualityVerdict:
        """Every validator's score of the response, their median, who misjudged, the judge's answer if the median
        is within the band of the threshold, and the flag."""
        check_texts(prompt_text, completion_text)
        computed: dict[int, int | None] = {}  # id(scorer) -> its score: a shared scorer computes once
        units: dict[str, int | None] = {}
        for validator in self.validators:
            key = id(validator.scorer)
            if key not in computed:
                computed[key] = _reported(validator.scorer, prompt_text, completion_text)
            units[validator.name] = computed[key]
        tolerance = to_units(self.tolerance)
        threshold = None if self.threshold is None else to_units(self.threshold)
        band = None if self.band is None else to_units(self.band)
        ruling = quality_ruling(units, tolerance, threshold, band)
        judge = None
        if ruling.in_band:
            assert self.fallback is not None  # a band comes with its judge
            judge = self.fallback(prompt_text, completion_text)
            ruling = quality_ruling(units, tolerance, threshold, band, judge.answer)
        assert ruling.flag is not None
        return QualityVerdict(self.validators[0].scorer.name, units, ruling.median, ruling.misjudging, tolerance,
                              threshold, band, judge, ruling.flag)


def _reported(scorer: Scorer, prompt_text: str, completion_text: str) -> int | None:
    """What a validator's scorer reports, in micro-units: a finite number's (below :data:`MAX_SCORE_UNITS`), or None
    for anything else."""
    value = scorer(prompt_text, completion_text)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or abs(value) * SCORE_UNITS >= MAX_SCORE_UNITS:
        return None
    return to_units(value)


def with_quality(verification: Mapping[str, Any] | None, verdict: QualityVerdict) -> dict[str, Any]:
    """A receipt's ``verification`` section with ``verdict`` as its ``quality`` entry (a new dict; a null section,
    generation in process, becomes one holding only the quality)."""
    return {**(verification or {}), "quality": verdict.section()}
