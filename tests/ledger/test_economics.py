"""Stake, rewards and slashing (``--stake``): balances derived by replaying the chain, proven dissent
slashed, an edge below the minimum stake no longer assigned, a tampered balance caught by audit, and
``bmoe records`` printing what the chain says."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from bmoe.data import Dataset
from bmoe.experiments.runs import train_run
from bmoe.ledger.economics import Economics, EconomicsError
from bmoe.ledger.errors import InvalidTransaction, LedgerError
from bmoe.ledger.keys import derive_identity
from bmoe.ledger.state import LedgerState, apply_block, apply_transaction, state_root
from bmoe.run.audit import audit_run_dir
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.session import Session
from tests.cli.helpers import assert_user_error
from tests.cli.in_process import bmoe_here as bmoe
from tests.conftest import small_config
from tests.ledger.chain_surgery import blocks_of, record_head, reseal_from

# Two colluders among five edges, lying on every expert; r = 3 samples: every round disputes one, the
# liars are slashed 100 per proven dissent and, below 150 of their 250, no longer assigned.
STAKED = small_config(assignment="sampled", replicas=3, malicious_ratio=0.4, attack_params={"probability": 1.0},
                      stake=250, reward=2, slash=100, min_stake=150, rounds=6)


@pytest.fixture(scope="module")
def staked_run(tmp_path_factory: pytest.TempPathFactory, tiny_data: Dataset) -> Path:
    run_dir = tmp_path_factory.mktemp("staked") / "run"
    with Session(STAKED, dataset=tiny_data, run_dir=run_dir) as session:
        train_run(STAKED, run_dir, session=session)
    return run_dir


def replay(run_dir: Path) -> list[LedgerState]:
    states, state = [], LedgerState()
    for block in blocks_of(run_dir / "chain.sqlite"):
        state = apply_block(state, block)
        states.append(state)
    return states


def test_balances_follow_from_the_records_by_replay(staked_run: Path) -> None:
    final = replay(staked_run)[-1]
    economics = final.economics
    assert economics is not None and economics.stakes == {edge: 250 for edge in final.edges}
    attackers = final.edges[-2:]
    for edge in final.edges:
        record, balance = final.edge_records[edge], final.balances[edge]
        assert balance.earned == economics.reward * record.accepted
        assert balance.slashed == min(balance.stake + balance.earned, economics.slash * record.dissent)
        assert balance.balance == balance.stake + balance.earned - balance.slashed >= 0
    for edge in attackers:
        assert final.edge_records[edge].dissent >= 2 and final.balances[edge].balance < economics.min_stake
    for edge in final.edges[:-2]:
        assert final.edge_records[edge].dissent == 0 and final.balances[edge].slashed == 0
        assert final.balances[edge].balance > 250


def test_an_edge_below_the_minimum_stake_is_no_longer_assigned(staked_run: Path) -> None:
    states = replay(staked_run)
    attackers = set(states[-1].edges[-2:])
    excluded_from = None
    for state in states[1:]:
        for task in state.tasks.values():
            assert task.eligible is not None
            if attackers.isdisjoint(task.eligible):
                excluded_from = excluded_from if excluded_from is not None else state.height
                assert not task.escalated  # nobody left to lie: every sample of honest edges agrees
                for expert in task.activated():
                    assert attackers.isdisjoint(task.commitments["result"][expert])
                    assert attackers.isdisjoint(state.assigned_edges(expert, task))
    assert excluded_from is not None and excluded_from < len(states) - 1, "the liars were never excluded"


def test_the_same_seeded_staked_run_gives_the_same_head_and_runs_without_stake_keep_their_hash(
        tiny_data: Dataset, staked_run: Path) -> None:
    with Session(STAKED, dataset=tiny_data) as session:
        session.train()
        head = session.head_hash
    assert head == json.loads((staked_run / "metrics.json").read_text())["summary"]["head_hash"]
    assert RunConfig().hash() == RunConfig(reward=5, slash=7, min_stake=0).hash() != RunConfig(stake=100).hash()


def test_a_balance_the_state_root_misstates_is_caught_by_audit(staked_run: Path, tmp_path: Path) -> None:
    """A validator (holding its key) re-seals block 2 with a state root that gives a liar its slash back."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(staked_run, run)
    states = replay(run)
    forged = copy.deepcopy(states[2])
    liar = forged.edges[-1]
    assert forged.balances[liar].slashed > 0
    forged.balances[liar].slashed = 0
    insider = derive_identity(STAKED.seed, "validator-0")
    head = reseal_from(run / "chain.sqlite", 2, insider,
                       lambda h: dataclasses.replace(h, state_root=state_root(forged)))
    record_head(run, head, STAKED.rounds)
    with pytest.raises(LedgerError, match="block 2: state root"):
        audit_run_dir(run, ())


def test_bmoe_records_prints_each_edges_record_and_account(staked_run: Path) -> None:
    result = bmoe("records", staked_run, "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    final = replay(staked_run)[-1]
    assert printed["height"] == final.height == STAKED.rounds
    assert printed["economics"]["slash"] == 100
    for row, edge in zip(printed["edges"], final.edges, strict=True):
        assert row["address"] == edge
        assert row["balance"] == final.balances[edge].balance and row["dissent"] == final.edge_records[edge].dissent
        assert row["eligible"] == (final.balances[edge].balance >= 150)
    table = bmoe("records", staked_run)
    assert table.returncode == 0 and "slash 100 per proven dissent" in table.stdout


def test_bmoe_records_refuses_what_is_not_a_run_in_one_line(tmp_path: Path) -> None:
    assert_user_error(bmoe("records", tmp_path / "absent"), "does not exist")
    assert_user_error(bmoe("records", tmp_path), "not a run or cluster directory")


@pytest.mark.parametrize(("changes", "needle"), [
    ({"stake": -1}, "stake"),
    ({"stake": 100, "slash": 101}, "a slash of 101 is larger than the stake of 100"),
    ({"stake": 100, "min_stake": 101}, "no edge could ever be assigned"),
    ({"stake": 100, "reward": -2}, "reward"),
    ({"stake": 100, "framework": "traditional", "num_edges": 10}, "stake applies to B-MoE"),
])
def test_bad_economics_settings_are_one_config_error(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        small_config(**changes)


def test_bad_economics_flags_exit_2_in_one_line(tmp_path: Path) -> None:
    assert_user_error(bmoe("train", "--run-dir", tmp_path / "r", "--stake", "10", "--slash", "20"),
                      "a slash of 20 is larger than the stake of 10")
    assert not (tmp_path / "r").exists()


def test_a_genesis_whose_stakes_do_not_name_its_edges_is_refused(staked_run: Path) -> None:
    genesis = blocks_of(staked_run / "chain.sqlite")[0].transactions[0]
    economics = dict(genesis.payload["economics"])
    stakes = dict(economics["stakes"])
    stakes.pop(next(iter(stakes)))
    forged = dataclasses.replace(genesis, payload={**genesis.payload, "economics": {**economics, "stakes": stakes}})
    with pytest.raises(InvalidTransaction, match="stakes must name every enrolled edge"):
        apply_transaction(LedgerState(), forged)
    with pytest.raises(EconomicsError, match="larger than the stake"):
        Economics({"a" * 64: 5}, reward=1, slash=6, min_stake=0)
