"""Quality verdicts on the ledger: one ``quality_verdict`` transaction per scored response of a verified generation
(PolyLink's TIQE beside bmoe's per-expert verification; a heuristic, docs/platform.md).

A validator records, for one response:

- ``generation``, ``response``, ``chunks``, ``completion``: the generation session's id, the response's id (its
  receipt's), the indices of the sealed ``generation_chunk`` transactions holding its expert calls (increasing,
  each already recorded), and the SHA-256 of its completion's token ids (the receipt's ``completion.sha256``): what
  was scored, bound to what was verified;
- ``scorer``: the scorer's name (``relevance/all-minilm-l6-v2``);
- ``scores``: each quality validator's score in micro-units (``verify/quality_rule.SCORE_UNITS``; null: it gave no
  finite number), integers so every machine agrees;
- ``rule``: ``tolerance``, ``threshold``, ``band``, the rule's parameters in micro-units (``threshold`` null:
  uncalibrated; ``band`` null: no judge model);
- ``verdict``: ``median``, ``flag``, ``misjudging``, what the scores give, and ``judge``: null, or the judge
  model's answer when the median was within the band of the threshold: its name, ``yes``/``no``, the margin of
  its yes logit over its no logit and the bias a yes must beat (micro-units), which the answer follows from.

The ledger re-computes the median, the misjudging validators and the flag from the scores
(:func:`~bmoe.verify.quality_rule.quality_ruling`, the rule the quality judge built them with) and refuses a verdict
that differs, a judge answer where none was due (or none where one was), an answer its margin does not give, and a
second verdict on one response; so ``bmoe audit``, which replays every block, re-checks every verdict. It cannot
re-check the scores themselves (that needs the texts and the scorer) nor the judge model's logits.

Misjudging validators are recorded against (a count per validator in the state), not slashed: the quality
validators hold no stake in the genesis, their scores are relayed by the sealing validator rather than signed by
each, and a score far from the median is a statistical disagreement about a heuristic, not proof of a lie (the
ledger slashes only on signed evidence: a dissent, never a withholding).

Must not know: what a scorer computes, the judge model, tensors, serving.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from bmoe.verify.quality_rule import judge_answer, quality_ruling


def response_key(generation: str, response: str) -> str:
    """How the state remembers a scored response (one verdict each)."""
    return f"{generation}/{response}"


def verdict_error(payload: Mapping[str, Any], chunks_recorded: int) -> str | None:
    """Why a ``quality_verdict`` payload (schema-valid) is not what its scores give, or None; ``chunks_recorded``:
    the ``generation_chunk`` transactions of its generation so far."""
    chunks = payload["chunks"]
    if any(later <= earlier for earlier, later in itertools.pairwise(chunks)):
        return f"chunks {chunks} are not increasing"
    if chunks[-1] >= chunks_recorded:
        return f"generation {payload['generation']!r} has {chunks_recorded} chunks recorded, not chunk {chunks[-1]}"
    scores, rule, verdict = payload["scores"], payload["rule"], payload["verdict"]
    if not scores:
        return "no validator's score"
    judge = verdict["judge"]
    if judge is not None and judge["answer"] != judge_answer(judge["margin"], judge["bias"]):
        return (f"the judge answered {judge['answer']!r}, its margin {judge['margin']} against its bias "
                f"{judge['bias']} gives {judge_answer(judge['margin'], judge['bias'])!r}")
    ruling = quality_ruling(scores, rule["tolerance"], rule["threshold"], rule["band"],
                            None if judge is None else judge["answer"])
    if ruling.in_band != (judge is not None):
        return ("the median is within the band of the threshold: the judge model must decide" if ruling.in_band
                else "the judge model was asked outside the band of the threshold")
    for field, expected in (("median", ruling.median), ("misjudging", list(ruling.misjudging)),
                            ("flag", ruling.flag)):
        if verdict[field] != expected:
            return f"{field} {verdict[field]!r}, the scores give {expected!r}"
    return None
