"""The conformance vectors on bmoe's own ledger (in memory and over SQLite), and the runner's teeth."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from bmoe.ledger.blocks import Block, block_hash, header_hash
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.conformance import load_vectors, open_vector, run_vector
from bmoe.ledger.errors import InvalidBlock
from bmoe.ledger.keys import Identity, derive_identity
from bmoe.ledger.node import LedgerNode
from bmoe.ledger.port import Ledger

VECTORS = load_vectors()


def memory_ledger(proposer: Identity, genesis: dict[str, Any]) -> tuple[LedgerNode, dict[str, Any]]:
    return LedgerNode(proposer, 2, None), {"engine": "pow", "difficulty": 2}


def test_vectors_cover_acceptance_and_refusals() -> None:
    names = {vector["name"] for vector in VECTORS}
    assert "accept_training_and_inference" in names
    assert sum(name.startswith("refuse_") for name in names) >= 8



def test_ledger_node_is_a_ledger() -> None:
    ledger, _, _ = open_vector(VECTORS[0], memory_ledger)
    assert isinstance(ledger, Ledger)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_memory_ledger_passes(vector: dict[str, Any]) -> None:
    result = run_vector(vector, memory_ledger)
    assert result.passed, result.failures
    assert result.blocks == len(vector["blocks"])


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_sqlite_ledger_passes_and_reopens(vector: dict[str, Any], tmp_path: Path) -> None:
    chains: list[ChainStore] = []

    def sqlite_ledger(proposer: Identity, genesis: dict[str, Any]) -> tuple[LedgerNode, dict[str, Any]]:
        chains.append(ChainStore(tmp_path / "chain.sqlite"))
        return LedgerNode(proposer, 1, chains[-1]), {"engine": "pow", "difficulty": 1}

    result = run_vector(vector, sqlite_ledger)
    assert result.passed, result.failures
    chains[0].close()
    with ChainStore(tmp_path / "chain.sqlite") as chain:  # what was sealed is what a replay derives
        reopened = LedgerNode.open(derive_identity(0, "anyone"), 1, chain)
        assert json.loads(json.dumps(reopened.view().summary())) == vector["blocks"][-1]["summary"]


def test_runner_reports_a_wrong_summary_and_a_wrong_reason() -> None:
    vector = copy.deepcopy(next(v for v in VECTORS if v["name"] == "refuse_forged_decision"))
    vector["blocks"][1]["summary"]["balances"] = {}
    item = next(i for i in vector["blocks"][1]["transactions"] if "refused" in i)
    item["refused"] = "some other reason"
    result = run_vector(vector, memory_ledger)
    assert not result.passed
    assert any("expected refusal 'some other reason'" in failure for failure in result.failures)
    assert any("state summary differs in balances" in failure for failure in result.failures)


def test_runner_catches_a_backend_that_accepts_what_it_must_refuse() -> None:
    class Lenient(LedgerNode):  # checks signatures only: the state machine's refusals are skipped
        def check(self, tx: Any) -> str | None:
            return None

    vector = next(v for v in VECTORS if v["name"] == "refuse_duplicate_commitment")
    result = run_vector(vector, lambda proposer, genesis: (Lenient(proposer, 0, None),
                                                             {"engine": "pow", "difficulty": 0}))
    assert any("expected refusal" in failure for failure in result.failures)


def _sealed_blocks(vector: dict[str, Any]) -> tuple[list[Block], Identity]:
    sealed: list[Block] = []

    class Recording(LedgerNode):
        def seal(self, timestamp: int, proposer: Identity | None = None) -> Block | None:
            block = super().seal(timestamp, proposer)
            assert block is not None
            sealed.append(block)
            return block

    proposers: list[Identity] = []

    def make(proposer: Identity, genesis: dict[str, Any]) -> tuple[LedgerNode, dict[str, Any]]:
        proposers.append(proposer)
        return Recording(proposer, 0, None), {"engine": "pow", "difficulty": 0}  # forgeries need no work

    assert run_vector(vector, make).passed
    return sealed, proposers[0]


def test_a_follower_adopts_what_was_sealed_and_refuses_a_forgery() -> None:
    vector = next(v for v in VECTORS if v["name"] == "accept_training_and_inference")
    blocks, proposer = _sealed_blocks(vector)
    follower = LedgerNode(proposer, 1, None)
    follower.adopt(blocks[0])
    follower.adopt(blocks[1])
    with pytest.raises(InvalidBlock, match="does not extend"):
        follower.adopt(blocks[3])
    lying = dataclasses.replace(blocks[2].header, state_root="0" * 64)  # a proposer that lies about the state
    with pytest.raises(InvalidBlock, match="bad proposer signature"):
        follower.adopt(dataclasses.replace(blocks[2], header=lying))
    signed = dataclasses.replace(blocks[2], header=lying, proposer_signature=proposer.sign(bytes.fromhex(
        header_hash(lying))))
    with pytest.raises(InvalidBlock, match="state root differs"):
        follower.adopt(signed)
    unrooted = dataclasses.replace(blocks[2].header, merkle_root="0" * 64)  # the same transactions, the root lies
    with pytest.raises(InvalidBlock, match="merkle_root"):
        follower.adopt(dataclasses.replace(blocks[2], header=unrooted, proposer_signature=proposer.sign(
            bytes.fromhex(header_hash(unrooted)))))
    follower.adopt(blocks[2])
    follower.adopt(blocks[3])
    assert follower.head_hash == block_hash(blocks[3])
    assert json.loads(json.dumps(follower.view().summary())) == vector["blocks"][3]["summary"]
