"""Reputation-aided hybrid PoW (the paper's direction B): trusted miners seal more, cheats lose the edge."""

from __future__ import annotations

import dataclasses

from bmoe.consensus.byzantine import TamperProposals, permissive
from bmoe.consensus.engine import ConsensusReplica
from bmoe.consensus.sim import Simulator
from bmoe.experiments.pow_network.miner import PowConfig, PowMiner
from bmoe.experiments.pow_network.reputation import ReputationRule, bonus_bits, effective_difficulty, next_reputation
from bmoe.ledger.keys import Identity
from tests.consensus.helpers import assert_safe, pow_network

BASE = PowConfig(difficulty=10, rate=2048.0, tick_interval=0.05, confirmations=3)
RULE = ReputationRule(enabled=True, min_difficulty=4, penalty=8, initial=(("m0", 15),))


def test_difficulty_arithmetic() -> None:
    assert [bonus_bits(r) for r in (0, 1, 2, 3, 7, 15, 1000)] == [0, 1, 1, 2, 3, 4, 9]
    assert [effective_difficulty(10, r, RULE) for r in (0, 1, 3, 15, 1000)] == [10, 9, 8, 6, 6]  # max 4 bits
    floor = dataclasses.replace(RULE, max_bonus_bits=9, min_difficulty=5)
    assert [effective_difficulty(10, r, floor) for r in (15, 1000)] == [6, 5]
    assert effective_difficulty(10, 1000, ReputationRule()) == 10  # disabled: plain PoW
    assert next_reputation({"a": 3, "b": 5}, "a", ["b"], RULE) == {"a": 4, "b": 0}


def share_of_blocks(sim: Simulator, observer: str, miner: str, upto: int) -> float:
    chain = sim.replicas[observer].best_chain()[:upto]  # type: ignore[attr-defined]
    return sum(1 for node in chain if node.block.header.miner == miner) / len(chain)


def run_pair(rule: ReputationRule, seed: int = 3) -> Simulator:
    config = dataclasses.replace(BASE, reputation=rule)
    sim = pow_network({"m0": 0.5, "m1": 0.5}, config=config, seed=seed)
    sim.run(until=20.0)
    assert_safe(sim, ["m0", "m1"])
    return sim


def test_a_trusted_honest_miner_seals_faster() -> None:
    """Equal hash power; m0 starts with reputation 15, so its blocks need 4 fewer bits (16x fewer hashes)."""
    plain = run_pair(ReputationRule())
    hybrid = run_pair(RULE)
    assert 0.3 <= share_of_blocks(plain, "m1", "m0", 30) <= 0.7
    assert share_of_blocks(hybrid, "m1", "m0", 30) >= 0.8
    # more blocks per second overall too: m0's easy blocks
    assert len(hybrid.replicas["m1"].best_chain()) > 2 * len(plain.replicas["m1"].best_chain())  # type: ignore[attr-defined]


def test_a_cheating_trusted_miner_loses_its_advantage() -> None:
    """m0 (reputation 15) mines tampered payloads: honest miners refuse its blocks, put them in the chain as
    evidence, and each proof costs m0 8 reputation, so its difficulty climbs back to the base."""
    config = dataclasses.replace(BASE, reputation=RULE)

    def cheat(identity: Identity, miners: dict[str, str], share: float, cfg: PowConfig) -> ConsensusReplica:
        quiet = dataclasses.replace(cfg, mine_empty=False)
        return TamperProposals(PowMiner(identity, miners, permissive, share, quiet))

    sim = pow_network({"m0": 1 / 3, "m1": 1 / 3, "m2": 1 / 3}, config=config, build={"m0": cheat})
    for i in range(40):
        sim.propose(f"tx-{i}".encode(), at=0.25 * i)  # a steady stream, so the cheat always has work
    sim.run(until=12.0)
    honest = ["m1", "m2"]
    assert_safe(sim, honest)
    m1 = sim.replicas["m1"]
    assert isinstance(m1, PowMiner)
    assert m1.stats.rejected["invalid_payload"] >= 2
    evidence = [h for node in m1.best_chain() for h in node.block.header.evidence]  # type: ignore[union-attr]
    assert len(evidence) >= 2
    assert m1.tip.reputation["m0"] == 0
    assert m1.difficulty_for("m0") == BASE.difficulty  # the advantage is gone
    assert all(node.block.header.miner != "m0" for node in m1.best_chain())  # type: ignore[union-attr]
