"""PBFT validators on other numerics (``--validator-fleet``): under ``tolerance`` every replica checks
the primary's gate, aggregation and gate update within the bound and every round seals without a view
change; under ``exact`` they refuse each other's blocks and the run stops loudly, naming why."""

from __future__ import annotations

from pathlib import Path

import pytest

from bmoe.data import Dataset, load_dataset
from bmoe.ledger.node import ConsensusStalled
from bmoe.run.config import ConfigError, RunConfig
from bmoe.run.session import Session
from tests.cli.helpers import SMALL, assert_user_error
from tests.cli.in_process import bmoe_here as bmoe

PBFT = RunConfig(dataset="digits", num_experts=6, top_k=2, num_edges=5, hidden=32, rounds=3, batch_size=100,
                 eval_every=1000, seed=5, consensus="pbft", validators=4, validator_fleet="default=2,f64=1,chunked=1",
                 fleet="default=2,f64=2,chunked=1", malicious_ratio=0.2, attack_params={"probability": 1.0})


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", seed=0)


def test_validators_on_other_numerics_seal_every_round_under_tolerance(digits: Dataset) -> None:
    with Session(PBFT.replace(comparison="tolerance"), dataset=digits) as session:
        session.train()
        assert session.node.state.height == PBFT.rounds
        assert session.pbft is not None and session.pbft.view_changes == 0
        honest = [e.address for e in session.edges if not e.behaviour.malicious]
        assert all(session.node.state.edge_records[e].dissent == 0 for e in honest)


def test_validators_on_other_numerics_stall_under_exact_naming_the_refusal(digits: Dataset) -> None:
    session = Session(PBFT.replace(fleet=""), dataset=digits)
    with pytest.raises(ConsensusStalled, match=r"validators refused: .*differs from the re-executed value"):
        session.train()
    assert session.node.state.height == 0  # nothing sealed after the genesis


@pytest.mark.parametrize(("validator_fleet", "needle"), [
    ("default=3", "validator fleet (--validator-fleet, one profile per validator): fleet counts sum to 3"),
    ("default=3,mkl-compat=1", "validator fleet: profile mkl-compat sets environment variables"),
    ("default=3,gpu=1", "unknown numeric profile 'gpu'"),
])
def test_a_bad_validator_fleet_is_one_config_error(validator_fleet: str, needle: str) -> None:
    with pytest.raises(ConfigError) as refused:
        PBFT.replace(validator_fleet=validator_fleet)
    assert needle in str(refused.value)


def test_the_cli_exits_3_when_validators_on_other_numerics_cannot_agree(tmp_path: Path) -> None:
    result = bmoe("train", "--run-dir", tmp_path / "run", *SMALL, "--rounds", "1", "--consensus", "pbft",
                  "--validators", "4", "--validator-fleet", "default=3,f64=1", "--dataset", "digits")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "consensus stalled: validator validator-3 cannot follow the chain the others sealed" in result.stderr
    assert "--comparison tolerance" in result.stderr and "Traceback" not in result.stderr
    assert_user_error(bmoe("train", "--run-dir", tmp_path / "bad", *SMALL, "--validator-fleet", "f64=2"),
                      "validator fleet")
