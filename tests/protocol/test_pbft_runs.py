"""B-MoE training sealed by PBFT among re-executing validators (the paper's scenario 1):
a Byzantine validator below f changes no accepted result; beyond f, consensus stalls safely;
audit checks every commit certificate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bmoe.ledger.audit import audit
from bmoe.ledger.chainstore import ChainStore
from bmoe.ledger.node import ConsensusStalled
from bmoe.ledger.sealing.pbft import PBFT_ENGINE
from bmoe.ledger.state import state_root
from bmoe.run.session import Session
from tests.conftest import small_config

ROUNDS = 4


def accepted_results(session: Session) -> tuple[str, list[str], list[float]]:
    state = session.node.state
    return state.gate_cid, list(state.expert_cids), [r["loss"] for r in session.history]


@pytest.fixture(scope="module")
def reference(tiny_data):  # type: ignore[no-untyped-def]
    session = Session(small_config(malicious_ratio=0.4, consensus="pbft", validators=4), dataset=tiny_data)
    session.train(rounds=ROUNDS)
    return session


def test_pbft_seals_the_same_results_as_pow(reference, tiny_data) -> None:  # type: ignore[no-untyped-def]
    pow_run = Session(small_config(malicious_ratio=0.4), dataset=tiny_data)
    pow_run.train(rounds=ROUNDS)
    assert accepted_results(pow_run) == accepted_results(reference)
    assert reference.pbft is not None and reference.pbft.view_changes == 0


@pytest.mark.parametrize("attack", ["tamper", "silent", "equivocate", "garbage", "replay"])
def test_one_byzantine_validator_of_four_changes_no_result(attack: str, reference, tiny_data) -> None:  # type: ignore[no-untyped-def]
    session = Session(small_config(malicious_ratio=0.4, consensus="pbft", validators=4, byzantine_validators=1,
                                   validator_attack=attack), dataset=tiny_data)
    session.train(rounds=ROUNDS)
    assert accepted_results(session) == accepted_results(reference)
    cluster = session.pbft
    assert cluster is not None and "validator-0" in cluster.byzantine  # the first primary misbehaves
    roots = {state_root(view.state) for view in cluster.views.values()}
    assert roots == {state_root(session.node.state)}  # honest validators hold the same state as the chain
    if attack in ("tamper", "silent"):
        assert cluster.view_changes >= 1  # the Byzantine primary was voted out
        assert session.node.state.height == ROUNDS


def test_seven_validators_tolerate_two_tampering(reference, tiny_data) -> None:  # type: ignore[no-untyped-def]
    session = Session(small_config(malicious_ratio=0.4, consensus="pbft", validators=7, byzantine_validators=2),
                      dataset=tiny_data)
    session.train(rounds=ROUNDS)
    assert accepted_results(session) == accepted_results(reference)


def test_beyond_f_silent_validators_stall_safely(tiny_data) -> None:  # type: ignore[no-untyped-def]
    session = Session(small_config(consensus="pbft", validators=4, byzantine_validators=2,
                                   validator_attack="silent", message_delay=0.001), dataset=tiny_data)
    with pytest.raises(ConsensusStalled):
        session.train(rounds=1)
    assert session.node.state.height == 0  # nothing sealed, nothing half-applied


def test_pbft_runs_are_deterministic(reference, tiny_data) -> None:  # type: ignore[no-untyped-def]
    again = Session(small_config(malicious_ratio=0.4, consensus="pbft", validators=4), dataset=tiny_data)
    again.train(rounds=ROUNDS)
    assert again.head_hash == reference.head_hash


def test_audit_checks_every_commit_certificate(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "run"
    with Session(small_config(consensus="pbft", validators=4, byzantine_validators=1), dataset=tiny_data,
                 run_dir=run_dir) as session:
        session.train(rounds=3)
    with ChainStore(run_dir / "chain.sqlite") as chain:
        report = audit(chain, session.store)
        assert report.pbft_blocks == 3
        block = chain.block_at(2)
    assert block.certificate is not None
    forged = dict(block.certificate)
    forged["commits"] = forged["commits"][:2]  # below the 2f + 1 quorum
    genesis = session.node.state.genesis or {}
    check = PBFT_ENGINE.rules(genesis["consensus"], frozenset(genesis["validators"])).block_error
    assert check(block) is None
    assert "quorum" in (check(dataclasses.replace(block, certificate=forged)) or "")
    with ChainStore(run_dir / "chain.sqlite") as chain:
        next_certificate = dict(chain.block_at(3).certificate or {})
    moved = dataclasses.replace(block, certificate=next_certificate)  # a valid certificate, of another block
    assert "another height" in (check(moved) or "")
