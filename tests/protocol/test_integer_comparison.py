"""``--comparison integer``: integer experts agree bit for bit on a mixed fleet, so the exact digest
rule holds again; every attack of the library is caught with only its attackers recorded, including
the paper's Gaussian weight noise applied to fixed-point weights."""

from __future__ import annotations

import pytest

from bmoe.data import Dataset
from bmoe.run.session import Session
from tests.conftest import small_config

MIXED = "default=1,threads2=1,f64=2,chunked=1"
ATTACKS = [("gaussian", {"probability": 1.0}), ("random", {"probability": 1.0}), ("scale", {"probability": 1.0}),
           ("sign_flip", {"probability": 1.0}), ("replay", {"probability": 1.0}), ("withhold", {"probability": 1.0})]


@pytest.mark.parametrize(("attack", "params"), ATTACKS, ids=[a for a, _ in ATTACKS])
def test_every_attack_on_integer_experts_is_caught_with_only_its_attackers_recorded(
        tiny_data: Dataset, attack: str, params: dict[str, float]) -> None:
    config = small_config(fleet=MIXED, comparison="integer", expert="mlp-int", rounds=4, malicious_ratio=0.4,
                          attack=attack, attack_params=params)
    with Session(config, dataset=tiny_data) as session:  # the oracle raises if honest edges split
        session.train()
        records = {e.address: (session.node.state.edge_records[e.address], e.behaviour.malicious)
                   for e in session.edges}
    assert all(r.dissent + r.withheld == 0 for r, malicious in records.values() if not malicious)
    assert all(r.dissent + r.withheld > 0 for r, malicious in records.values() if malicious), attack


def test_the_genesis_records_the_integer_comparison(tiny_data: Dataset) -> None:
    with Session(small_config(comparison="integer", expert="mlp-int", rounds=1), dataset=tiny_data) as session:
        session.train()
        assert session.node.state.genesis["comparison"] == "integer"  # type: ignore[index]
        assert session.node.state.genesis["expert_spec"]["preset"] == "mlp-int"  # type: ignore[index]
