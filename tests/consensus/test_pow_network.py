"""PoW among competing miners in the simulator: convergence, forks, and the 50 % threshold."""

from __future__ import annotations

import pytest

from bmoe.consensus.byzantine import (
    TAMPER_MARK,
    Garbage,
    Replay,
    Silent,
    TamperProposals,
    permissive,
)
from bmoe.consensus.engine import ConsensusReplica
from bmoe.consensus.sim import Simulator
from bmoe.experiments.pow_network.miner import PowConfig, PowMiner
from bmoe.experiments.pow_network.withholding import WithholdingMiner
from bmoe.ledger.keys import Identity
from tests.consensus.helpers import SEED, all_committed, assert_safe, committed_payloads, honest_validate, pow_network

# 512 hashes/s against 2**8 per block: the whole network seals about 2 blocks per second
CONFIG = PowConfig(difficulty=8, rate=512.0, tick_interval=0.05, confirmations=3)


def miners(sim: Simulator, names: list[str]) -> list[PowMiner]:
    out = [sim.replicas[n] for n in names]
    assert all(isinstance(m, PowMiner) for m in out)
    return out  # type: ignore[return-value]


@pytest.mark.parametrize("count", [3, 5])
def test_honest_miners_converge_on_one_final_prefix(count: int) -> None:
    names = [f"m{i}" for i in range(count)]
    sim = pow_network({n: 1 / count for n in names}, config=CONFIG)
    blocks = [f"tx-{i}".encode() for i in range(8)]
    for p in blocks:
        sim.propose(p)
    assert sim.run(until=60.0, stop=all_committed(names, 12))
    assert_safe(sim, names)
    for m in miners(sim, names):
        assert not m.finality_violations
        final = committed_payloads(sim, m.name)
        assert [p for p in final if p] == blocks  # every request sealed once, in order, empty blocks between
        assert len(m.best_chain()) >= len(final) + CONFIG.confirmations
    mined = sum(m.stats.events["mined"] for m in miners(sim, names))
    assert mined >= 12


def test_forks_happen_and_resolve_by_most_work() -> None:
    """Network delay close to the block interval: miners often build on different tips; the most-work rule
    reconciles them and nothing below k blocks is ever rewritten."""
    names = ["m0", "m1", "m2", "m3"]
    sim = pow_network({n: 0.25 for n in names}, config=CONFIG, delay=(0.1, 0.4))
    assert sim.run(until=60.0, stop=all_committed(names, 20))
    assert_safe(sim, names)
    group = miners(sim, names)
    assert sum(m.stats.events["reorg"] for m in group) >= 3
    assert sum(m.stats.events["side_block"] for m in group) >= 3
    assert all(not m.finality_violations for m in group)
    sim.run(until=sim.now + 2.0)  # after quiet enough: the same best tip everywhere, or one block apart
    heights = [m.tip.height for m in group]
    assert max(heights) - min(heights) <= 1


def test_partitioned_miners_reconcile_after_healing() -> None:
    names = ["m0", "m1", "m2"]
    sim = pow_network({"m0": 0.5, "m1": 0.25, "m2": 0.25}, config=CONFIG)
    sim.partition(["m0"], ["m1", "m2"], at=0.0)
    sim.heal(at=2.0)  # shorter than k blocks on either side: nothing final yet has to change
    assert sim.run(until=60.0, stop=all_committed(names, 15))
    assert_safe(sim, names)
    assert any(m.stats.events["orphan"] for m in miners(sim, names))  # they fetched each other's blocks


def test_a_miner_that_mines_tampered_payloads_never_gets_one_final() -> None:
    def cheat(identity: Identity, miners_: dict[str, str], share: float, config: PowConfig) -> ConsensusReplica:
        return TamperProposals(PowMiner(identity, miners_, permissive, share, config))

    sim = pow_network({"m0": 0.4, "m1": 0.3, "m2": 0.3}, config=CONFIG, build={"m0": cheat})
    for i in range(6):
        sim.propose(f"tx-{i}".encode())
    honest = ["m1", "m2"]
    assert sim.run(until=60.0, stop=all_committed(honest, 15))
    assert_safe(sim, honest)
    for name in honest:
        assert all(TAMPER_MARK not in p for p in committed_payloads(sim, name))
        assert sim.replicas[name].stats.rejected["invalid_payload"] >= 1


def withholding_attack(share: float, seed: int, confirmations: int, until: float) -> tuple[bool, Simulator]:
    config = PowConfig(difficulty=8, rate=512.0, tick_interval=0.05, confirmations=confirmations)
    honest = (1 - share) / 2
    sim = pow_network(
        {"attacker": share, "h1": honest, "h2": honest}, config=config, seed=seed,
        build={"attacker": lambda i, m, s, c: WithholdingMiner(i, m, honest_validate, s, c)})
    for i in range(3):
        sim.propose(f"pay-{i}".encode(), to=["h1", "h2"])
        sim.propose(f"double-spend-{i}".encode(), to="attacker")
    rewritten = sim.run(until=until, stop=lambda s: any(m.finality_violations for m in miners(s, ["h1", "h2"])))
    return rewritten, sim


def test_majority_attacker_rewrites_a_final_block() -> None:
    """The paper's threshold, above it: with 70 % of the hash power a private chain overtakes the public one
    after the public one made a block final (k = 6 deep), and every such run rewrites history."""
    for seed in range(8):
        rewritten, sim = withholding_attack(0.7, seed, confirmations=6, until=40.0)
        assert rewritten, f"seed {seed}: the majority attacker did not catch up within 40 s"
        victim = next(m for m in miners(sim, ["h1", "h2"]) if m.finality_violations)
        height, old, new = victim.finality_violations[0]
        assert old != new
        reports = [c for c in sim.committed[victim.name] if c.height == height]
        assert len(reports) == 2 and reports[0].payload_hash != reports[1].payload_hash
        assert sim.replicas["attacker"].released_at is not None  # type: ignore[attr-defined]


def test_minority_attacker_cannot_rewrite_a_final_block() -> None:
    """Below it: with 25 % the private chain falls behind; within 40 s (about 80 blocks) no final block of
    the honest miners ever changes (Nakamoto: the catch-up probability decays like (q/p)^k)."""
    for seed in range(8):
        rewritten, sim = withholding_attack(0.25, seed, confirmations=6, until=40.0)
        assert not rewritten, f"seed {seed}"
        assert_safe(sim, ["h1", "h2"])
        assert len(sim.committed["h1"]) >= 30


def test_garbage_replaying_and_silent_miners_do_not_disturb_the_honest_ones() -> None:
    def garbage(i: Identity, m: dict[str, str], s: float, c: PowConfig) -> ConsensusReplica:
        return Garbage(PowMiner(i, m, honest_validate, s, c), list(m), seed=SEED, interval=0.05)

    def replay(i: Identity, m: dict[str, str], s: float, c: PowConfig) -> ConsensusReplica:
        return Replay(PowMiner(i, m, honest_validate, s, c), list(m), seed=SEED, interval=0.05)

    def silent(i: Identity, m: dict[str, str], s: float, c: PowConfig) -> ConsensusReplica:
        return Silent(PowMiner(i, m, honest_validate, s, c))

    sim = pow_network({"g": 0.2, "r": 0.2, "s": 0.2, "h1": 0.2, "h2": 0.2}, config=CONFIG,
                      build={"g": garbage, "r": replay, "s": silent})
    honest = ["h1", "h2"]
    assert sim.run(until=60.0, stop=all_committed(honest, 12))
    assert_safe(sim, [*honest, "g", "r"])
    rejected = sim.replicas["h1"].stats.rejected + sim.replicas["h2"].stats.rejected
    for reason in ("malformed", "replayed", "oversized"):
        assert rejected[reason] > 0, reason
    final = {c.proof["header"]["miner"] for c in sim.committed["h1"]}
    assert "s" not in final  # a miner that never publishes never gets a block in
