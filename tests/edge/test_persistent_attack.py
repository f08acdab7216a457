"""The paper's attack read as persistent (``gaussian_persistent``): the noise an edge injects stays in the copy it
keeps and accumulates; colluders keep identical copies; the copy is the ledger's again once the ledger adopts
what the edge produced; a B-MoE minority never moves the accepted weights, while a traditional host's expert
drifts further from clean with every round it serves."""

from __future__ import annotations

import torch

from bmoe.data import Dataset
from bmoe.edge.attacks.gaussian import GaussianWeightNoise
from bmoe.edge.attacks.gaussian_persistent import PersistentGaussianNoise
from bmoe.edge.behaviour import AttackContext, make_behaviour
from bmoe.edge.runtime import weights_cid
from bmoe.run.session import Session
from tests.conftest import small_config

WEIGHTS = {"w": torch.zeros(4, 3), "b": torch.ones(3)}


def _ctx(round_index: int, edge: int = 3, expert: int = 0) -> AttackContext:
    return AttackContext(round_index, expert, edge, run_seed=9, collude=True)


def test_the_noise_accumulates_in_the_kept_copy_round_after_round() -> None:
    persistent = make_behaviour("gaussian_persistent", probability=0.5)
    transient = make_behaviour("gaussian", probability=0.5)
    assert isinstance(persistent, PersistentGaussianNoise) and isinstance(transient, GaussianWeightNoise)
    expected = {key: torch.zeros_like(value) for key, value in WEIGHTS.items()}
    strikes = 0
    for round_index in range(12):
        fresh = transient.tamper_weights(_ctx(round_index), WEIGHTS)  # this round's noise alone, or nothing
        if fresh is not None:
            strikes += 1
            expected = {key: expected[key] + fresh[key] - WEIGHTS[key] for key in expected}
        kept = persistent.tamper_weights(_ctx(round_index), WEIGHTS)
        if strikes == 0:
            assert kept is None
            continue
        assert kept is not None
        for key in WEIGHTS:
            torch.testing.assert_close(kept[key] - WEIGHTS[key], expected[key])
    assert 2 <= strikes <= 10  # both readings struck in the same rounds, several times
    assert persistent.deviation_norm(0) > 0.0


def test_colluders_keep_identical_copies_and_a_round_adds_noise_once() -> None:
    first, second = make_behaviour("gaussian_persistent", probability=1.0), make_behaviour(
        "gaussian_persistent", probability=1.0)
    for round_index in range(5):
        a = first.tamper_weights(_ctx(round_index, edge=3), WEIGHTS)
        b = second.tamper_weights(_ctx(round_index, edge=4), WEIGHTS)
        again = first.tamper_weights(_ctx(round_index, edge=3), WEIGHTS)  # an escalation computes again
        assert a is not None and b is not None and again is not None
        assert weights_cid(a) == weights_cid(b) == weights_cid(again)


def test_the_copy_is_the_ledgers_again_once_the_ledger_adopts_what_the_edge_produced() -> None:
    attack = make_behaviour("gaussian_persistent", probability=1.0)
    assert isinstance(attack, PersistentGaussianNoise)
    noisy = attack.tamper_weights(_ctx(0), WEIGHTS)
    assert noisy is not None
    updated = {key: value - 0.1 for key, value in noisy.items()}  # its SGD step from its own copy
    assert attack.tamper_update(_ctx(0), WEIGHTS, updated) is None  # it commits the step as computed
    adopted = attack.tamper_weights(_ctx(1), updated)  # the ledger took its update (traditional)
    assert adopted is not None
    fresh = make_behaviour("gaussian", probability=1.0).tamper_weights(_ctx(1), updated)
    assert fresh is not None and weights_cid(adopted) == weights_cid(fresh)  # only round 1's noise on top


def _served(tiny_data: Dataset, attack: str, ratio: float, **changes: object) -> list[float]:
    """Train clean, then serve the test set four times among attackers striking every round; accuracies."""
    session = Session(small_config(**changes), dataset=tiny_data)
    session.train()
    session.set_edge_behaviours(session.config.replace(malicious_ratio=ratio, attack=attack,
                                                       attack_params={"probability": 1.0, "noise_std": 0.3}))
    accuracies = [session.infer_test_set() for _ in range(4)]
    session.close()
    return accuracies


def test_a_traditional_host_drifts_further_each_round_it_serves_and_b_moe_does_not(tiny_data: Dataset) -> None:
    transient = _served(tiny_data, "gaussian", 0.5, framework="traditional", num_edges=4)
    persistent = _served(tiny_data, "gaussian_persistent", 0.5, framework="traditional", num_edges=4)
    bmoe_clean = _served(tiny_data, "gaussian_persistent", 0.0)
    bmoe_persistent = _served(tiny_data, "gaussian_persistent", 0.4)  # 2 colluders of 5 edges
    assert persistent[-1] < transient[-1]  # the noise stayed and added up
    assert bmoe_persistent == bmoe_clean  # a minority never moves what B-MoE serves
