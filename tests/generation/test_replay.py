"""A receipt replays: the same tokens from the chain and the store alone, every call re-checked; a receipt the chain
does not back, or a store that lost or changed an object, is refused by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.errors import LedgerError
from bmoe.protocol.generation.replay import ReplayError, audit_generation, replay_receipt
from bmoe.run.generation import GenerationSession
from bmoe.run.lm.artifacts import chain_states
from bmoe.storage import DirectoryStore
from tests.generation.helpers import PARAMS, PROMPTS, liar, model, receipt, session


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSession, list[dict[str, Any]]]:
    """Three requests generated together among a liar (rolled back), their receipts, the ledger dir."""
    run_dir = tmp_path_factory.mktemp("ledger")
    s = session(model(), {3: liar(0, 1)}, run_dir=run_dir)
    requests = [s.decoding.submit(p, q) for p, q in zip(PROMPTS, PARAMS, strict=True)]
    while s.decoding.busy:
        s.decoding.step()
    assert s.decoding.stats.rollbacks > 0
    return run_dir, s, [receipt(s, r) for r in requests]


def _blocks(run_dir: Path) -> list[Any]:
    with ChainStore(run_dir / "chain.sqlite", readonly=True) as chain:
        return list(chain.iter_blocks())


def test_every_receipt_replays_to_its_tokens_and_every_call_rechecks(served: Any) -> None:
    run_dir, s, receipts = served
    store = DirectoryStore(run_dir / "store")
    for index, r in enumerate(receipts):
        report = replay_receipt(r, _blocks(run_dir), store)
        assert report.tokens_match and report.prompt_match
        assert report.tokens == s.decoding.result(index).tokens
        assert report.check.rechecked > 0 and report.check.wrong == []


def test_the_audit_rechecks_every_chunk(served: Any) -> None:
    run_dir, s, _ = served
    state = list(chain_states(run_dir / "chain.sqlite"))[-1]
    chunks, check = audit_generation(state, _blocks(run_dir), DirectoryStore(run_dir / "store"))
    assert chunks == s.decoding.stats.chunks and check.rechecked == s.decoding.stats.calls and not check.wrong


def test_a_receipt_naming_another_transaction_is_refused(served: Any) -> None:
    run_dir, _, receipts = served
    forged = {**receipts[0], "ledger": {**receipts[0]["ledger"], "chunks": [
        {**receipts[0]["ledger"]["chunks"][0], "tx": "ab" * 32}]}}
    with pytest.raises(ReplayError, match="no such transaction"):
        replay_receipt(forged, _blocks(run_dir), DirectoryStore(run_dir / "store"))


def test_a_receipt_of_other_tokens_does_not_match(served: Any) -> None:
    run_dir, _, receipts = served
    other = {**receipts[0], "completion": {**receipts[0]["completion"], "sha256": receipts[1]["completion"]["sha256"]}}
    assert not replay_receipt(other, _blocks(run_dir), DirectoryStore(run_dir / "store")).tokens_match


def test_an_in_process_receipt_is_not_replayable(served: Any) -> None:
    run_dir, _, receipts = served
    with pytest.raises(ReplayError, match="not a verified generation"):
        replay_receipt({**receipts[0], "ledger": None}, _blocks(run_dir), DirectoryStore(run_dir / "store"))


def test_a_tampered_chain_does_not_replay(served: Any, tmp_path: Path) -> None:
    run_dir, _, receipts = served
    blocks = _blocks(run_dir)
    blocks[2] = blocks[1]  # a block out of place
    with pytest.raises(LedgerError):
        replay_receipt(receipts[0], blocks, DirectoryStore(run_dir / "store"))


def test_a_receipt_naming_another_object_as_its_request_is_refused(served: Any) -> None:
    run_dir, _, receipts = served
    other = receipts[0]["ledger"]["chunks"][0]["records"]  # an object, but not a request
    forged = {**receipts[0], "ledger": {**receipts[0]["ledger"], "request": other}}
    with pytest.raises(ReplayError, match="not a generation request object"):
        replay_receipt(forged, _blocks(run_dir), DirectoryStore(run_dir / "store"))
