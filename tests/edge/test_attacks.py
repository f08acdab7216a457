"""Every attack: B-MoE below 50 % accepts exactly what a clean run accepts and records the attackers;
the traditional framework takes the attack in. Attacks are plug-ins chosen by name."""

from __future__ import annotations

import pytest
import torch

from bmoe.edge.behaviour import BEHAVIOURS, AttackContext, make_behaviour
from bmoe.run.session import Session
from tests.conftest import small_config

ATTACKS = ["gaussian", "gaussian_persistent", "sign_flip", "scale", "random", "replay", "withhold", "sleeper",
           "bound_hug"]


def trained(tiny_data, **changes: object) -> Session:  # type: ignore[no-untyped-def]
    session = Session(small_config(**changes), dataset=tiny_data)
    session.train()
    return session


@pytest.fixture(scope="module")
def clean_bmoe(tiny_data):  # type: ignore[no-untyped-def]
    return trained(tiny_data)


@pytest.fixture(scope="module")
def clean_traditional(tiny_data):  # type: ignore[no-untyped-def]
    return trained(tiny_data, framework="traditional", num_edges=4)


def test_every_attack_is_registered() -> None:
    make_behaviour("honest")
    assert set(ATTACKS) <= set(BEHAVIOURS)


@pytest.mark.parametrize("attack", ATTACKS)
def test_bmoe_accepts_the_clean_result_and_records_attackers(attack: str, tiny_data, clean_bmoe) -> None:  # type: ignore[no-untyped-def]
    params = {"probability": 1.0, **({"wake_round": 2.0} if attack == "sleeper" else {})}
    session = trained(tiny_data, malicious_ratio=0.4, attack=attack, attack_params=params)
    state, clean = session.node.state, clean_bmoe.node.state
    assert state.expert_cids == clean.expert_cids
    assert state.gate_cid == clean.gate_cid
    assert session.evaluate() == clean_bmoe.evaluate()
    edges = session.edges
    for edge in edges:
        record = state.edge_records[edge.address]
        flagged = record.dissent + record.withheld
        if edge.behaviour.malicious:
            assert flagged > 0, f"{attack}: attacker {edge.index} not recorded"
        else:
            assert flagged == 0, f"{attack}: honest edge {edge.index} accused"


@pytest.mark.parametrize("attack", ATTACKS)
def test_traditional_framework_takes_the_attack_in(attack: str, tiny_data, clean_traditional) -> None:  # type: ignore[no-untyped-def]
    params = {"probability": 1.0, **({"wake_round": 2.0} if attack == "sleeper" else {})}
    session = trained(tiny_data, framework="traditional", num_edges=4, malicious_ratio=0.5, attack=attack,
                      attack_params=params)
    assert session.node.state.expert_cids != clean_traditional.node.state.expert_cids


def test_sleeper_is_honest_until_it_wakes(tiny_data) -> None:  # type: ignore[no-untyped-def]
    session = Session(small_config(malicious_ratio=0.4, attack="sleeper",
                                   attack_params={"probability": 1.0, "wake_round": 2.0}), dataset=tiny_data)
    flagged = [outcome.misbehaviour for outcome in session.train(rounds=4)]
    assert flagged[:2] == [0, 0] and all(count > 0 for count in flagged[2:])


@pytest.mark.parametrize("collude", [True, False])
def test_colluders_publish_identical_manipulated_results(collude: bool, tiny_data) -> None:  # type: ignore[no-untyped-def]
    session = Session(small_config(malicious_ratio=0.4, collude=collude, attack_params={"probability": 1.0}),
                      dataset=tiny_data)
    session.train(rounds=1)
    task = next(iter(session.node.state.tasks.values()))
    attackers = {edge.address for edge in session.edges if edge.behaviour.malicious}
    for committed in task.commitments["result"].values():
        digests = {committed[edge][0] for edge in attackers}
        assert len(digests) == (1 if collude else 2)


def test_attack_probability_is_per_round_and_seeded() -> None:
    attack = make_behaviour("sign_flip", probability=0.2)
    strikes = [attack.strikes(AttackContext(r, 0, 7, run_seed=5, collude=True)) for r in range(2000)]
    assert 0.17 < sum(strikes) / len(strikes) < 0.23
    again = [attack.strikes(AttackContext(r, 0, 7, run_seed=5, collude=True)) for r in range(2000)]
    assert strikes == again
    other_edge = [attack.strikes(AttackContext(r, 0, 8, run_seed=5, collude=True)) for r in range(2000)]
    assert strikes == other_edge  # colluders share their coin


def test_output_attacks_transform_outputs() -> None:
    ctx = AttackContext(0, 0, 0, 0, True)
    out = torch.randn(4, 3)
    assert torch.equal(make_behaviour("sign_flip", probability=1.0).tamper_output(ctx, out), -out)
    assert torch.equal(make_behaviour("scale", probability=1.0, factor=3.0).tamper_output(ctx, out), 3 * out)
    assert make_behaviour("sign_flip", probability=0.0).tamper_output(ctx, out) is None
    assert make_behaviour("withhold", probability=1.0).withholds(ctx)


@pytest.mark.parametrize(("name", "params", "message"), [
    ("nonsense", {}, "unknown attack"),
    ("gaussian", {"noise": 1.0}, "no parameter"),
    ("gaussian", {"probability": 1.5}, "probability"),
])
def test_bad_attack_settings_are_refused(name: str, params: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_behaviour(name, **params)
