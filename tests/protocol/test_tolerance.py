"""B-MoE on a mixed fleet under ``--comparison tolerance``: honest edges whose bytes differ are never
accused or split, every attack past the bound is caught with only its attackers recorded, the run is
deterministic, and the ledger's groups are what the objects give."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bmoe.data import Dataset
from bmoe.data.registry import load_dataset
from bmoe.run.config import RunConfig
from bmoe.run.session import Session
from bmoe.verify.comparison import Tolerance, make_comparison
from tests.conftest import small_config

MIXED = "default=1,threads2=1,f64=2,chunked=1"  # five edges, three numerics: their bytes differ every round


def tolerant(**changes: object) -> RunConfig:
    return small_config(fleet=MIXED, comparison="tolerance", **changes)


def records(session: Session) -> dict[str, int]:
    """Misbehaviour records (dissent and withheld) per edge."""
    return {edge: r.dissent + r.withheld for edge, r in session.node.state.edge_records.items()}


def honest_and_malicious(session: Session) -> tuple[list[str], list[str]]:
    honest = [e.address for e in session.edges if not e.behaviour.malicious]
    return honest, [e.address for e in session.edges if e.behaviour.malicious]


def test_the_mixed_fleet_really_differs_in_its_bytes(tiny_data: Dataset) -> None:
    with Session(tolerant(rounds=2), dataset=tiny_data) as session:
        session.train()
        task = next(iter(session.node.state.tasks.values()))
        digests = {d for committed in task.commitments["result"].values() for d, _ in committed.values()}
        per_expert = len(task.commitments["result"])
        assert len(digests) > per_expert  # more than one digest per expert: exact would split them


def test_the_genesis_records_the_comparison_and_its_bounds(tiny_data: Dataset) -> None:
    config = tolerant(rounds=1, result_bound=2e-5, update_bound=3e-6)
    with Session(config, dataset=tiny_data) as session:
        session.train()
        assert session.node.state.comparison == Tolerance(result_bound=2e-5, update_bound=3e-6)
    assert make_comparison(config.comparison_spec()) == Tolerance(result_bound=2e-5, update_bound=3e-6)
    assert config.hash() != config.replace(result_bound=1e-5).hash()
    assert RunConfig().hash() == RunConfig(result_bound=1e-5).hash()  # bounds only tolerance reads


@pytest.mark.parametrize("rule", ["majority", "plurality", "fraction"])
def test_a_mixed_honest_fleet_is_never_split_for_an_attacking_minority(tiny_data: Dataset, rule: str) -> None:
    config = tolerant(rounds=6, malicious_ratio=0.4, rule=rule, rule_fraction=0.6,
                      attack_params={"probability": 1.0})
    with Session(config, dataset=tiny_data) as session:
        session.train()
        honest, malicious = honest_and_malicious(session)
        counts = records(session)
        assert all(counts[edge] == 0 for edge in honest)
        assert all(counts[edge] > 0 for edge in malicious)
        for record in session.history:
            assert record["rejected"] == 0  # every activated expert accepted: the honest group won


ATTACKS = [("gaussian", {"probability": 1.0}), ("random", {"probability": 1.0}), ("scale", {"probability": 1.0}),
           ("sign_flip", {"probability": 1.0}), ("replay", {"probability": 1.0}),
           ("sleeper", {"probability": 1.0, "wake_round": 2}), ("withhold", {"probability": 1.0}),
           ("bound_hug", {"probability": 1.0, "margin": 10.0})]  # margin < 1: tests/edge/test_bound_hug.py


@pytest.mark.parametrize(("attack", "params"), ATTACKS, ids=[a for a, _ in ATTACKS])
def test_every_attack_past_the_bound_is_caught_with_only_its_attackers_recorded(
        tiny_data: Dataset, attack: str, params: dict[str, float]) -> None:
    config = tolerant(rounds=5, malicious_ratio=0.4, attack=attack, attack_params=params, collude=True)
    with Session(config, dataset=tiny_data) as session:
        session.train()
        honest, malicious = honest_and_malicious(session)
        counts = records(session)
        assert [counts[edge] for edge in honest] == [0] * len(honest)
        assert all(counts[edge] > 0 for edge in malicious), (attack, counts)


def test_the_same_seeded_mixed_fleet_run_gives_the_same_head_with_sharing_on_and_off(tiny_data: Dataset) -> None:
    heads = []
    for share in (True, True, False):
        with Session(tolerant(rounds=4, malicious_ratio=0.2, share_compute=share), dataset=tiny_data) as session:
            session.train()
            heads.append(session.head_hash)
    assert heads[0] == heads[1] == heads[2]


LONG = RunConfig(dataset="digits", num_experts=6, top_k=2, num_edges=5, hidden=64, rounds=100, batch_size=64,
                 eval_every=1000, seed=3)
# The fast tier's witness runs the same comparisons for a few rounds; the slow tier for the hundred (tests/tiers.py).
ROUNDS = (pytest.param(3, id="3-rounds"), pytest.param(LONG.rounds, id="100-rounds", marks=pytest.mark.slow))
# Accuracy the homogeneous fleet must reach: after a hundred rounds as in the README; after a few, above chance.
LEARNED = {LONG.rounds: 0.8}


@dataclass(frozen=True)
class Trained:
    accuracy: float
    expert_cids: list[str]
    records: int
    rejected: int


def train_long(config: RunConfig) -> Trained:
    with Session(config, dataset=load_dataset("digits", seed=0)) as session:
        session.train()
        assert len(session.history) == config.rounds
        return Trained(session.evaluate(), list(session.node.state.expert_cids), sum(records(session).values()),
                       sum(record["rejected"] for record in session.history))


@pytest.fixture(scope="module", params=ROUNDS)
def long_run(request: pytest.FixtureRequest) -> RunConfig:
    return LONG.replace(rounds=request.param)


@pytest.fixture(scope="module")
def homogeneous(long_run: RunConfig) -> Trained:
    """The homogeneous float fleet under exact comparison: the accuracy to match."""
    trained = train_long(long_run)
    assert trained.accuracy > LEARNED.get(long_run.rounds, 0.1)
    return trained


def test_training_rounds_on_a_mixed_fleet_accept_everything_and_match_the_homogeneous_fleet(
        long_run: RunConfig, homogeneous: Trained) -> None:
    mixed = train_long(long_run.replace(fleet=MIXED, comparison="tolerance"))
    assert (mixed.records, mixed.rejected) == (0, 0)
    assert abs(mixed.accuracy - homogeneous.accuracy) <= 0.01, (mixed, homogeneous)


@pytest.mark.slow  # a few rounds of it: test_integer_comparison.py (integer experts on the same mixed fleet)
@pytest.mark.parametrize("long_run", [LONG.rounds], indirect=True, ids=["100-rounds"])
def test_integer_experts_on_a_mixed_fleet_agree_bit_for_bit_every_round(long_run: RunConfig,
                                                                       homogeneous: Trained) -> None:
    """Under ``--comparison integer`` the simulator's oracle raises on any honest split, so a run that
    finishes had every honest answer identical: the mixed fleet trains the homogeneous one's weights."""
    integer = long_run.replace(expert="mlp-int", comparison="integer")
    alone, mixed = train_long(integer), train_long(integer.replace(fleet=MIXED))
    assert (mixed.records, mixed.rejected) == (0, 0)
    assert mixed.expert_cids == alone.expert_cids and mixed.accuracy == alone.accuracy
    assert abs(mixed.accuracy - homogeneous.accuracy) <= 0.01, (mixed, homogeneous)


def test_a_diverging_mixed_fleet_fails_the_round_instead_of_splitting_on_overflows(tiny_data: Dataset) -> None:
    """Honest overflows differ in their bytes on a mixed fleet; counted together they meet the rule, so
    the round fails (RoundDiverged) and nothing non-finite is sealed."""
    from bmoe.protocol.gate_step import RoundDiverged
    from bmoe.protocol.round import run_round

    session = Session(tolerant(), dataset=tiny_data)
    x, y = tiny_data.x_train[:32], tiny_data.y_train[:32]
    with pytest.raises(RoundDiverged, match="edges computed a non-finite"):
        for round_index in range(6):
            run_round(session.participants, round_index, x, y, train=True, lr=1e20, balance=0.01)
    assert not session.node.pending and session.node.state.height < 6
