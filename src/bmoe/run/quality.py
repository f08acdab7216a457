"""Quality verdicts sealed on a verified generation session's ledger: each scored response's verdict
(``lm/quality/judge.py``) becomes a ``quality_verdict`` transaction (``ledger/quality.py``) signed by the
session's validator and sealed in a block of its own, at once, so the receipt that carries the verdict names a
transaction already on the chain (the alternative, riding with the next chunk's block, would leave the last
responses' verdicts unsealed until more decoding came).

The session's lock is held while the block is built and sealed: a server's decoding thread seals chunks on the
same node meanwhile. A response whose receipt names no sealed chunk (nothing was verified) gets no transaction.

Must not know: HTTP, the scorer's or the judge model's computation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bmoe.ledger.transactions import tx_hash
from bmoe.lm.quality.judge import QualityJudge, QualityVerdict
from bmoe.run.generation import GenerationSession


def verdict_payload(verdict: QualityVerdict, receipt: Mapping[str, Any]) -> dict[str, Any]:
    """The ``quality_verdict`` payload of ``verdict`` on the response of ``receipt`` (a verified receipt's JSON:
    its id, its ledger section's generation and chunks, its completion's digest)."""
    ledger = receipt["ledger"]
    return {"generation": ledger["generation"], "response": receipt["id"],
            "chunks": [entry["chunk"] for entry in ledger["chunks"]], "completion": receipt["completion"]["sha256"],
            "scorer": verdict.scorer, "scores": dict(verdict.units),
            "rule": {"tolerance": verdict.tolerance, "threshold": verdict.threshold, "band": verdict.band},
            "verdict": {"median": verdict.median, "flag": verdict.flag, "misjudging": list(verdict.misjudging),
                        "judge": None if verdict.judge is None else verdict.judge.to_json()}}


class QualityRecorder:
    """Scores each response of ``session`` with ``judge`` and seals the verdict on the session's ledger."""

    def __init__(self, session: GenerationSession, judge: QualityJudge) -> None:
        self.session, self.judge = session, judge

    def seal(self, verdict: QualityVerdict, receipt: Mapping[str, Any]) -> dict[str, Any] | None:
        """Seal ``verdict`` on the response of ``receipt``; where it is: ``{"tx", "height"}`` (None when the
        receipt names no sealed chunk)."""
        if not receipt["ledger"]["chunks"]:
            return None
        session = self.session
        with session.ledger_lock:
            tx = session.signer.sign("quality_verdict", verdict_payload(verdict, receipt))
            session.node.submit(tx)
            block = session.node.seal(timestamp=session.node.view().height + 1)
        assert block is not None
        return {"tx": tx_hash(tx), "height": block.header.height}

    def amend(self, receipt: dict[str, Any], prompt_text: str, completion_text: str) -> dict[str, Any]:
        """``receipt`` with ``verification.quality``: the verdict, and where it was sealed (``ledger``: null when
        nothing was)."""
        verdict = self.judge.score(prompt_text, completion_text)
        section = {**verdict.section(), "ledger": self.seal(verdict, receipt)}
        return {**receipt, "verification": {**(receipt["verification"] or {}), "quality": section}}
