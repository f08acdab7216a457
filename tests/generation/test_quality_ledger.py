"""Quality verdicts on a verified session's ledger (``run/quality.py``, ``ledger/quality.py``): each response of a
real verified session (the tiny model) scored by three validators running the relevance scorer over the tiny
sentence encoder and one lazy validator, the verdict sealed in a block of its own, the lazy validator recorded
against; the ledger refusing a verdict whose median, flag, misjudging list or judge answer is not what its scores
give, a second verdict on one response, and chunks not yet recorded; a chain replayed from its file (as ``bmoe
audit`` replays it) re-checking every verdict, and refusing a forged one."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bmoe.explorer.app import make_app
from bmoe.explorer.lm_source import run_source
from bmoe.explorer.snapshot import Explorer
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import ChainIntegrityError, InvalidBlock, InvalidTransaction
from bmoe.ledger.node import LedgerNode
from bmoe.ledger.pow import seal_block
from bmoe.ledger.state import apply_block
from bmoe.ledger.transactions import sign_transaction
from bmoe.lm.quality.judge import QualityJudge, QualityValidator
from bmoe.lm.quality.llm_judge import JudgeAnswer
from bmoe.lm.quality.scorers import FixedReport, RelevanceScorer
from bmoe.lm.quality.sentence_encoder import read_sentence_encoder
from bmoe.run.generation import GenerationSession
from bmoe.run.quality import QualityRecorder, verdict_payload
from tests.generation.helpers import PARAMS, PROMPTS, model, receipt, session
from tests.quality.tiny_encoder import WORDS, write_tiny_encoder


def words(ids: list[int]) -> str:
    """Token ids as text the tiny encoder reads (the tiny model has no tokenizer)."""
    return " ".join(WORDS[i % len(WORDS)] for i in ids)


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory) -> QualityJudge:
    scorer = RelevanceScorer(read_sentence_encoder(write_tiny_encoder(tmp_path_factory.mktemp("tiny")), "tiny"))
    return QualityJudge([*(QualityValidator(f"validator-{i}", scorer) for i in range(3)),
                         QualityValidator("lazy", FixedReport(5.0))], threshold=0.1)


def served(s: GenerationSession, recorder: QualityRecorder) -> list[dict[str, Any]]:
    """Every prompt through the session; each response's receipt amended by ``recorder`` (as bmoe serve does)."""
    decoding = s.decoding
    requests = [decoding.submit(prompt, params) for prompt, params in zip(PROMPTS, PARAMS, strict=True)]
    while decoding.busy:
        decoding.step()
    amended = []
    for request, prompt in zip(requests, PROMPTS, strict=True):
        made = {**receipt(s, request), "id": f"cmpl-{request}", "verification": decoding.verification(request)}
        amended.append(recorder.amend(made, words(prompt), words(decoding.result(request).tokens)))
    return amended


def test_each_responses_verdict_is_sealed_and_the_lazy_validator_recorded_against(
        tmp_path: Path, judge: QualityJudge) -> None:
    s = session(model(), run_dir=tmp_path / "ledger")
    receipts = served(s, QualityRecorder(s, judge))
    state = s.node.state
    assert state.quality_verdicts == {"gen-0": len(PROMPTS)} and state.misjudged == {"lazy": len(PROMPTS)}
    summary = state.summary()
    assert summary["quality_verdicts"] == {"gen-0": 3} and summary["misjudged"] == {"lazy": 3}
    for made in receipts:
        quality = made["verification"]["quality"]
        where = quality["ledger"]
        block = s.node.chain.block_at(where["height"])
        [tx] = block.transactions
        assert tx.kind == "quality_verdict" and where["tx"] == made["verification"]["quality"]["ledger"]["tx"]
        assert tx.payload["response"] == made["id"] and tx.payload["completion"] == made["completion"]["sha256"]
        assert tx.payload["chunks"] == [entry["chunk"] for entry in made["ledger"]["chunks"]]
        assert quality["misjudging"] == ["lazy"] and quality["scores"]["lazy"] == 5.0
        assert quality["median"] == tx.payload["verdict"]["median"] / 1e6
        assert quality["flag"] == tx.payload["verdict"]["flag"]
        assert made["verification"]["mode"] == "b-moe"  # the verification section kept
    replayed = LedgerNode.open(s.validator, 0, ChainStore(tmp_path / "ledger" / "chain.sqlite"))  # as audit does
    assert replayed.head_hash == s.head_hash and replayed.state.misjudged == {"lazy": 3}
    s.store.sync()
    with TestClient(make_app(Explorer(run_source(tmp_path / "ledger")), False)) as client:  # the explorer shows it
        shown = client.get(f"/block/{receipts[0]['verification']['quality']['ledger']['height']}").text
    assert f"quality (heuristic) of {receipts[0]['id']}: median" in shown and "misjudging [&#x27;lazy&#x27;]" in shown


def test_a_chain_without_verdicts_keeps_its_summary(judge: QualityJudge) -> None:
    s = session(model())
    served(s, QualityRecorder(s, QualityJudge(judge.validators[:3], threshold=0.1)))
    assert s.node.state.misjudged == {} and "misjudged" not in s.node.state.summary()  # honest validators agree
    plain = session(model())
    assert not {"quality_verdicts", "misjudged"} & set(plain.node.state.summary())


def _recorded(judge: QualityJudge) -> tuple[GenerationSession, dict[str, Any], dict[str, Any]]:
    """A session that served every prompt, one receipt and its verdict's payload (not yet submitted)."""
    s = session(model())
    decoding = s.decoding
    request = decoding.submit(PROMPTS[0], PARAMS[0])
    while decoding.busy:
        decoding.step()
    made = {**receipt(s, request), "id": "cmpl-0"}
    verdict = judge.score(words(PROMPTS[0]), words(decoding.result(request).tokens))
    return s, made, verdict_payload(verdict, made)


def _refusal(s: GenerationSession, payload: dict[str, Any]) -> str | None:
    tx = sign_transaction(s.validator, "quality_verdict", payload, s.node.next_nonce(s.validator.address))
    return s.node.check(tx)


def outcome(p: dict[str, Any], **changes: object) -> dict[str, Any]:
    return {**p, "verdict": {**p["verdict"], **changes}}


def rule(p: dict[str, Any], **changes: object) -> dict[str, Any]:
    return {**p, "rule": {**p["rule"], **changes}}


def band_around(p: dict[str, Any]) -> int:
    """A band just wide enough to put the payload's median inside it."""
    return abs(p["verdict"]["median"] - p["rule"]["threshold"])


@pytest.mark.parametrize(("change", "reason"), [
    (lambda p: outcome(p, median=p["verdict"]["median"] + 1), "median"),
    (lambda p: outcome(p, flag="low" if p["verdict"]["flag"] == "ok" else "ok"), "flag"),
    (lambda p: outcome(p, misjudging=[]), "misjudging"),
    (lambda p: outcome(p, misjudging=["lazy", "validator-0"]), "misjudging"),
    (lambda p: {**p, "scores": {**p["scores"], "lazy": p["verdict"]["median"]}}, "misjudging"),  # the scores differ
    (lambda p: rule(p, tolerance=10**7), "misjudging"),  # a tolerance under which nobody misjudged
    (lambda p: rule(p, threshold=p["verdict"]["median"] + 1 if p["verdict"]["flag"] == "ok" else -10**6), "flag"),
    (lambda p: outcome(p, judge={"model": "smollm2-135m", "answer": "yes", "margin": 3, "bias": 0}),
     "the judge model was asked outside the band"),
    (lambda p: rule(p, band=band_around(p)), "the judge model must decide"),
    (lambda p: {**p, "chunks": [0, 99]}, "chunks recorded, not chunk 99"),
    (lambda p: {**p, "chunks": [1, 0]}, "not increasing"),
    (lambda p: {**p, "scores": {}}, "no validator's score"),
    (lambda p: {**p, "scores": {**p["scores"], "lazy": 0.5}}, "schema: scores"),  # a float, not micro-units
])
def test_the_ledger_refuses_a_verdict_its_scores_do_not_give(judge: QualityJudge, change, reason: str) -> None:
    s, _, payload = _recorded(judge)
    assert _refusal(s, payload) is None
    refused = _refusal(s, change(copy.deepcopy(payload)))
    assert refused is not None and refused.startswith("quality_verdict: ") and reason in refused, refused


def test_within_the_band_the_judges_answer_must_be_what_its_margin_gives(judge: QualityJudge) -> None:
    s, _, payload = _recorded(judge)
    band = rule(payload, band=band_around(payload))
    yes = outcome(band, judge={"model": "smollm2-135m", "answer": "yes", "margin": -1200, "bias": -1500}, flag="ok")
    assert _refusal(s, yes) is None
    assert _refusal(s, outcome(yes, flag="low")) is not None  # the judge said yes
    no = outcome(band, judge={"model": "smollm2-135m", "answer": "no", "margin": 7, "bias": 7}, flag="low")
    assert _refusal(s, no) is None  # a tie is no
    lying = _refusal(s, outcome(no, judge={**no["verdict"]["judge"], "answer": "yes"}, flag="ok"))
    assert lying is not None and "its margin 7 against its bias 7 gives 'no'" in lying
    assert JudgeAnswer("smollm2-135m", "yes", -1200, -1500).to_json() == yes["verdict"]["judge"]


def test_one_verdict_a_response_and_only_from_a_validator(judge: QualityJudge) -> None:
    s, _, payload = _recorded(judge)
    s.node.submit(s.signer.sign("quality_verdict", payload))
    again = _refusal(s, payload)
    assert again is not None and "already has a verdict" in again
    forged = sign_transaction(s.edges[0].identity, "quality_verdict", {**payload, "response": "cmpl-1"}, 0)
    assert "not a validator" in str(s.node.check(forged))


def test_a_forged_verdict_in_a_sealed_block_fails_the_replay(tmp_path: Path, judge: QualityJudge) -> None:
    s, _, payload = _recorded(judge)
    wrong = outcome(payload, flag="low" if payload["verdict"]["flag"] == "ok" else "ok")
    forged = sign_transaction(s.validator, "quality_verdict", wrong, s.node.next_nonce(s.validator.address))
    state = s.node.state
    block = seal_block(s.validator, state.height + 1, s.head_hash, [forged], state.height + 1, 0, "0" * 64)
    with pytest.raises((InvalidTransaction, InvalidBlock, ChainIntegrityError), match="quality_verdict: flag"):
        apply_block(state, block)
