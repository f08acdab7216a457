"""The quality layer's rule (PolyLink's TIQE, issue 26), written once over integers so every machine agrees: the
validators' scores of one response, each in micro-units (:data:`SCORE_UNITS` per unit, :func:`to_units`), give

- the **median** of the reported scores (an even count: the floor of the mean of the middle two);
- the **misjudging** validators: further than the tolerance from the median, or reporting no score;
- the **flag**: ``unscored`` (no score), ``uncalibrated`` (no threshold), else ``low`` below the threshold and
  ``ok`` at or above it, except inside the **band** around the threshold (``|median - threshold| <= band``),
  where the scorer is unsure and a judge language model's yes/no decides (``ok`` on yes, ``low`` on no).

The quality judge (``lm/quality/judge.py``) builds its verdicts with :func:`quality_ruling`; the ledger
(``ledger/quality.py``) re-computes it from a recorded verdict's scores and refuses one that differs, so
``bmoe audit`` re-checks it by replay. A heuristic: it says how an answer scored, not whether it was computed.

Must not know: what a scorer computes, the judge model, transactions, serving.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

SCORE_UNITS = 1_000_000  # a score of 1.0 is recorded as 1_000_000
MAX_SCORE_UNITS = 1 << 53  # exact in every JSON reader (the ledger's schemas bound every integer by it)
FLAGS = ("ok", "low", "uncalibrated", "unscored")
JUDGE_ANSWERS = ("yes", "no")


def to_units(value: float) -> int:
    """A finite score in micro-units, rounded half to even (Python's ``round``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"a score must be a finite number, got {value!r}")
    return round(value * SCORE_UNITS)


def from_units(units: int | None) -> float | None:
    return None if units is None else units / SCORE_UNITS


def judge_answer(margin: int, bias: int = 0) -> str:
    """The judge's answer from its margin (the logit of yes less that of no, in micro-units): yes only when the
    margin is above the judge's ``bias`` (0, or calibrated on honest responses: a small model leans to no); a tie
    is no (the answer must earn its pass)."""
    return "yes" if margin > bias else "no"


@dataclass(frozen=True)
class QualityRuling:
    """What the rule gives for one response's scores."""

    median: int | None
    misjudging: tuple[str, ...]  # in the scores' order
    in_band: bool  # the judge must decide
    flag: str | None  # None only when ``in_band`` and no judge answer was given


def quality_ruling(scores: Mapping[str, int | None], tolerance: int, threshold: int | None, band: int | None,
                   answer: str | None = None) -> QualityRuling:
    """The median, the misjudging validators and the flag of ``scores`` (validator -> micro-units, None for no
    score); ``answer``: the judge's, used only inside the band."""
    reported = sorted(value for value in scores.values() if value is not None)
    if not reported:
        return QualityRuling(None, tuple(scores), False, "unscored")
    half = len(reported) // 2
    median = reported[half] if len(reported) % 2 else (reported[half - 1] + reported[half]) // 2
    misjudging = tuple(name for name, value in scores.items() if value is None or abs(value - median) > tolerance)
    if threshold is None:
        return QualityRuling(median, misjudging, False, "uncalibrated")
    if band is not None and abs(median - threshold) <= band:
        flag = None if answer is None else ("ok" if answer == "yes" else "low")
        return QualityRuling(median, misjudging, True, flag)
    return QualityRuling(median, misjudging, False, "low" if median < threshold else "ok")
