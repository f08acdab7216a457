"""Owns combining validators' quality scores of one response (PolyLink's TIQE): every validator scores it, the
median of the finite scores is the response's score, a validator whose score is further than ``tolerance`` from
the median (or not a finite number) is flagged *misjudging*, and the response is flagged ``low`` when the median is
below a threshold calibrated on honest responses (:func:`calibrate_threshold`).

:meth:`QualityJudge.score` returns a :class:`QualityVerdict`; its :meth:`~QualityVerdict.section` is the
``quality`` entry of a receipt's ``verification`` section (:func:`with_quality` adds it). Validators that share a
scorer object share its computation (a scorer is deterministic: each would compute the same number); a validator's
failure to give a number is a value (a misjudging report), not an exception.

Must not know: what a scorer computes, the protocol, the ledger, serving.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .scorers import Scorer, check_texts

DEFAULT_TOLERANCE = 0.02  # honest validators give the same bits on one build; this absorbs another build's rounding
DEFAULT_PERCENTILE = 5.0  # the threshold: the 5th percentile of honest responses' scores (5 % false alarms)
FLAGS = ("ok", "low", "uncalibrated", "unscored")  # median >= threshold, below it, no threshold, no finite score


@dataclass(frozen=True)
class QualityValidator:
    """A validator of responses' quality: its name (an address on a ledger) and the scorer it runs."""

    name: str
    scorer: Scorer


@dataclass(frozen=True)
class QualityVerdict:
    """The validators' scores of one response combined."""

    scorer: str  # the honest scorer's name (the first validator's)
    scores: dict[str, float | None]  # validator -> its score (None: no finite number)
    median: float | None  # of the finite scores; None when there is none
    misjudging: tuple[str, ...]  # validators far from the median, or with no finite score
    threshold: float | None
    flag: str  # one of FLAGS

    def section(self) -> dict[str, Any]:
        """The receipt's ``verification.quality`` entry (JSON)."""
        return {"heuristic": True, "scorer": self.scorer, "scores": dict(self.scores), "median": self.median,
                "threshold": self.threshold, "flag": self.flag, "misjudging": list(self.misjudging)}


def median_verdict(scores: Mapping[str, float | None], tolerance: float) -> tuple[float | None, tuple[str, ...]]:
    """The median of the finite ``scores`` and the validators further than ``tolerance`` from it (or with no
    finite score), in ``scores``' order."""
    finite = [value for value in scores.values() if value is not None and math.isfinite(value)]
    if not finite:
        return None, tuple(scores)
    middle = statistics.median(finite)
    far = tuple(name for name, value in scores.items()
                if value is None or not math.isfinite(value) or abs(value - middle) > tolerance)
    return middle, far


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


class QualityJudge:
    """Several validators' scores of each response, combined by the median."""

    def __init__(self, validators: Sequence[QualityValidator], tolerance: float = DEFAULT_TOLERANCE,
                 threshold: float | None = None) -> None:
        if not validators:
            raise ValueError("validators must name at least one QualityValidator")
        names = [validator.name for validator in validators]
        if len(set(names)) != len(names) or not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"validators must have distinct non-empty names, got {names!r}")
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or \
                not (math.isfinite(tolerance) and tolerance >= 0):
            raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)
                                      or not math.isfinite(threshold)):
            raise ValueError(f"threshold must be a finite number or None, got {threshold!r}")
        self.validators, self.tolerance, self.threshold = list(validators), float(tolerance), threshold

    def with_threshold(self, threshold: float) -> QualityJudge:
        """The same validators, flagging below ``threshold``."""
        return QualityJudge(self.validators, self.tolerance, threshold)

    def score(self, prompt_text: str, completion_text: str) -> QualityVerdict:
        """Every validator's score of the response, their median, who misjudged, and the flag."""
        check_texts(prompt_text, completion_text)
        computed: dict[int, float | None] = {}  # id(scorer) -> its score: a shared scorer computes once
        scores: dict[str, float | None] = {}
        for validator in self.validators:
            key = id(validator.scorer)
            if key not in computed:
                computed[key] = _reported(validator.scorer, prompt_text, completion_text)
            scores[validator.name] = computed[key]
        middle, misjudging = median_verdict(scores, self.tolerance)
        if middle is None:
            flag = "unscored"
        elif self.threshold is None:
            flag = "uncalibrated"
        else:
            flag = "low" if middle < self.threshold else "ok"
        return QualityVerdict(self.validators[0].scorer.name, scores, middle, misjudging, self.threshold, flag)


def _reported(scorer: Scorer, prompt_text: str, completion_text: str) -> float | None:
    """What a validator's scorer reports: a finite float, or None for anything else."""
    value = scorer(prompt_text, completion_text)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def with_quality(verification: Mapping[str, Any] | None, verdict: QualityVerdict) -> dict[str, Any]:
    """A receipt's ``verification`` section with ``verdict`` as its ``quality`` entry (a new dict; a null section,
    generation in process, becomes one holding only the quality)."""
    return {**(verification or {}), "quality": verdict.section()}
