"""``bmoe serve --quality``: the quality layer's judge built from the flags, and what it adds to every receipt
(docs/platform.md, "Quality evaluation"). Under ``--verified`` each verdict is also sealed on the session's ledger
(``run/quality.py``) and the receipt's ``verification.quality.ledger`` names its transaction; without it there is
no ledger, and the verdict is in the receipt only (``ledger``: null).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bmoe.cli.errors import UserError

if TYPE_CHECKING:
    from bmoe.lm.quality.judge import QualityJudge
    from bmoe.run.generation import GenerationSession
    from bmoe.serve.app import ReceiptAmend

QUALITY_VALIDATORS = 3  # in one server all run the same scorer; a deployment's each run their own


def check_quality_flags(quality: bool, threshold: float | None, band: float | None, bias: float | None) -> None:
    """One line for a quality flag given without the one it refines."""
    if threshold is not None and not quality:
        raise UserError("--quality-threshold needs --quality")
    if band is not None and threshold is None:
        raise UserError("--quality-band needs --quality-threshold (the band is around it)")
    if bias is not None and band is None:
        raise UserError("--quality-judge-bias needs --quality-band (the judge model is asked only within it)")


def quality_judge(threshold: float | None, band: float | None, bias: float | None) -> QualityJudge:
    """Three validators running the relevance scorer (all-MiniLM-L6-v2, loaded now, fetched first if absent) and,
    with ``band``, SmolLM2-135M-Instruct as the judge within it of the threshold."""
    from bmoe.lm.quality.judge import QualityJudge, QualityValidator
    from bmoe.lm.quality.llm_judge import pretrained_judge
    from bmoe.lm.quality.scorers import RelevanceScorer
    from bmoe.lm.quality.sentence_encoder import load_sentence_encoder

    scorer = RelevanceScorer(load_sentence_encoder())
    fallback = pretrained_judge(bias=bias or 0.0) if band is not None else None
    return QualityJudge([QualityValidator(f"validator-{i}", scorer) for i in range(QUALITY_VALIDATORS)],
                        threshold=threshold, band=band, fallback=fallback)


def quality_amend(judge: QualityJudge, session: GenerationSession | None) -> ReceiptAmend:
    """Every receipt's ``verification.quality``: ``judge``'s verdict on its prompt and completion texts, sealed on
    ``session``'s ledger when there is one."""
    if session is not None:
        from bmoe.run.quality import QualityRecorder

        return QualityRecorder(session, judge).amend

    def amend(receipt: dict[str, Any], prompt_text: str, completion_text: str) -> dict[str, Any]:
        section = {**judge.score(prompt_text, completion_text).section(), "ledger": None}
        return {**receipt, "verification": {**receipt["verification"], "quality": section}}
    return amend
