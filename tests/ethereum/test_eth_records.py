"""A bmoe chain as the contract's calls, without a node: CIDs as (digest, codec), the rule as a fraction, the
genesis as the enrolment, each block's records as its transactions say, and the accounts derived per run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bmoe.data import Dataset
from bmoe.ethereum import records as records_module
from bmoe.ethereum.accounts import address_of, derive_eth_account
from bmoe.ethereum.cids import DAG_PB, NO_CID, RAW, cid_from_chain, cid_to_chain
from bmoe.ethereum.errors import RecordsError
from bmoe.ethereum.records import STATUSES, block_records, enrolment_of, quorum_of, task_key
from bmoe.ledger.blocks import Block
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.state import LedgerState
from bmoe.run.session import Session
from bmoe.storage import CHUNK_SIZE, cid_of
from bmoe.verify.acceptance import AcceptanceRule
from tests.conftest import small_config

CONFIG = small_config(malicious_ratio=0.4, stake=50, reward=1, slash=10, rounds=3)


@pytest.fixture(scope="module")
def blocks(tmp_path_factory: pytest.TempPathFactory, tiny_data: Dataset) -> list[Block]:
    run_dir = tmp_path_factory.mktemp("records") / "run"
    with Session(CONFIG, dataset=tiny_data, run_dir=run_dir) as session:
        session.train()
    with ChainStore(run_dir / "chain.sqlite") as chain:
        return list(chain.iter_blocks())


def test_a_cid_is_its_digest_and_codec_both_ways() -> None:
    for data, codec in ((b"small", RAW), (b"x" * (CHUNK_SIZE + 1), DAG_PB)):
        cid = cid_of(data)
        digest, found = cid_to_chain(cid)
        assert found == codec and len(digest) == 32 and cid_from_chain(digest, codec) == cid
    assert cid_from_chain(*NO_CID) is None
    with pytest.raises(RecordsError, match="not a bmoe CID"):
        cid_to_chain("Qmnotacid")


@pytest.mark.parametrize(("rule", "quorum"), [
    (AcceptanceRule("majority"), (1, 2, True)),
    (AcceptanceRule("fraction", 2 / 3), (2, 3, False)),
    (AcceptanceRule("fraction", 0.7), (7, 10, False)),
    (AcceptanceRule("fraction", 0.5), (1, 2, False)),
    (AcceptanceRule("fraction", 1.0), (1, 1, False)),
])
def test_the_rule_becomes_a_fraction_that_needs_the_same_votes_for_every_fleet_size(
        rule: AcceptanceRule, quorum: tuple[int, int, bool]) -> None:
    assert quorum_of(rule, 64) == quorum


@pytest.mark.parametrize("name", ["plurality", "sole"])
def test_rules_without_a_quorum_are_refused(name: str) -> None:
    with pytest.raises(RecordsError, match="majority and fraction rules"):
        quorum_of(AcceptanceRule(name), 10)


def test_the_genesis_becomes_the_enrolment(blocks: list[Block]) -> None:
    genesis = blocks[0].transactions[0].payload
    enrolment = enrolment_of(genesis, ["0x" + "ab" * 20])
    assert [edge.hex() for edge in enrolment.edges] == genesis["edges"]
    assert enrolment.stakes == (50,) * 5 and (enrolment.reward, enrolment.slash) == (1, 10)
    assert enrolment.quorum == (1, 2, True) and enrolment.exact
    assert cid_from_chain(*enrolment.gate) == genesis["gate_cid"]
    assert len(enrolment.constructor_args()) == 12
    with pytest.raises(RecordsError, match="only a B-MoE run"):
        enrolment_of({**genesis, "framework": "traditional"}, [])


def test_each_blocks_records_are_what_its_transactions_say(blocks: list[Block]) -> None:
    state = LedgerState()
    genesis_records, state = block_records(state, blocks[0])
    assert genesis_records.round is None and not genesis_records.commitments
    assert genesis_records.header.parent_hash == bytes(32)
    for block in blocks[1:]:
        records, after = block_records(state, block)
        by_kind = {kind: [tx for tx in block.transactions if tx.kind == kind] for kind in
                   ("task", "commitment", "expert_update", "acceptance", "update_acceptance", "misbehaviour")}
        task = by_kind["task"][0].payload
        assert records.round is not None and records.round.task == task_key(task["task_id"])
        assert len(records.commitments) == sum(len(tx.payload["results"]) for tx in by_kind["commitment"]) + sum(
            len(tx.payload["updates"]) for tx in by_kind["expert_update"])
        assert len(records.misbehaviours) == sum(len(tx.payload["records"]) for tx in by_kind["misbehaviour"])
        assert [d.phase for d in records.decisions] == sorted(d.phase for d in records.decisions)
        for decision in records.decisions:
            assert decision.assigned == len(state.edges)  # assignment "all", no minimum stake
            assert list(decision.supporters) == sorted(decision.supporters)
            assert (decision.status == STATUSES["no_quorum"]) == (not decision.supporters)
        state = after
    assert state.height == CONFIG.rounds


def test_a_block_the_ledger_refuses_is_refused_here(blocks: list[Block]) -> None:
    _, state = block_records(LedgerState(), blocks[0])
    forged = dataclasses.replace(blocks[1], header=dataclasses.replace(blocks[1].header, state_root="ab" * 32))
    with pytest.raises(RecordsError, match="block 1: the ledger refuses it"):
        block_records(state, forged)
    with pytest.raises(RecordsError, match="the ledger refuses it"):
        block_records(state, blocks[2])


def test_a_block_larger_than_the_contract_takes_is_refused_naming_the_bound(
        blocks: list[Block], monkeypatch: pytest.MonkeyPatch) -> None:
    _, state = block_records(LedgerState(), blocks[0])
    monkeypatch.setitem(records_module.BOUNDS, "commitments", 3)
    with pytest.raises(RecordsError, match=r"block 1 holds \d+ commitments; the contract takes at most 3 per block"):
        block_records(state, blocks[1])


def test_ethereum_accounts_are_derived_per_seed_and_name(tmp_path: Path) -> None:
    first = derive_eth_account(11, "validator-0")
    assert address_of(first) == address_of(derive_eth_account(11, "validator-0")) == first.address.lower()
    assert first.address != derive_eth_account(11, "validator-1").address != derive_eth_account(12, "validator-0")
