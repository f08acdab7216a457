"""PBFT view changes: a silent, crashed, tampering or partitioned primary; progress and safety after."""

from __future__ import annotations

import pytest

from bmoe.consensus.byzantine import TAMPER_MARK, Silent, TamperProposals
from bmoe.consensus.pbft import PbftConfig, PbftReplica
from tests.consensus.helpers import all_committed, assert_safe, committed_payloads, payloads, pbft_network

CONFIG = PbftConfig(timeout=0.3)


@pytest.mark.parametrize("n", [4, 7])
def test_silent_primary_is_replaced_and_the_group_makes_progress(n: int) -> None:
    sim, honest = pbft_network(n, {"r0": lambda inner, *_: Silent(inner)}, config=CONFIG)
    blocks = payloads(5)
    for p in blocks:
        sim.propose(p)
    assert sim.run(until=5.0, stop=all_committed(honest, len(blocks)))
    assert_safe(sim, honest)
    for name in honest:
        r = sim.replicas[name]
        assert isinstance(r, PbftReplica)
        assert r.view == 1 and r.primary == "r1"
        assert r.stats.events["view_change"] >= 1 and r.stats.events["new_view"] == 1
        assert committed_payloads(sim, name) == blocks
    # two timeouts (ask peers, then change view) before view 1, then three delays per block
    assert sim.now <= 2 * CONFIG.timeout + 0.2 + len(blocks) * 3 * 0.03


def test_primary_crash_mid_run_keeps_what_was_committed() -> None:
    sim, honest = pbft_network(4, config=CONFIG)
    sim.crash("r0", at=0.1)
    blocks = payloads(8)
    for i, p in enumerate(blocks):
        sim.propose(p, at=0.03 * i)
    sim.run(until=0.1)
    before = {n: sim.chain(n) for n in honest}
    assert any(before.values()), "some blocks commit before the crash"
    survivors = ["r1", "r2", "r3"]
    assert sim.run(until=6.0, stop=all_committed(survivors, len(blocks)))
    assert_safe(sim, survivors)
    for name in survivors:
        assert sim.chain(name)[: len(before[name])] == before[name]  # a committed block never changes
        assert committed_payloads(sim, name) == blocks


def test_tampering_primary_gets_no_quorum_and_its_block_never_commits() -> None:
    sim, honest = pbft_network(4, {"r0": lambda inner, *_: TamperProposals(inner)}, config=CONFIG)
    blocks = payloads(4)
    for p in blocks:
        sim.propose(p)
    assert sim.run(until=5.0, stop=all_committed(honest, len(blocks)))
    assert_safe(sim, honest)
    for name in honest:
        r = sim.replicas[name]
        assert isinstance(r, PbftReplica)
        assert all(TAMPER_MARK not in p for p in committed_payloads(sim, name))
        assert committed_payloads(sim, name) == blocks
        assert r.stats.rejected["invalid_payload"] >= 1
        assert any("tampered" in reason for _, _, reason in r.invalid_log)
        assert r.view >= 1


def test_a_tampered_request_is_never_proposed_by_an_honest_primary() -> None:
    sim, honest = pbft_network(4, config=CONFIG)
    sim.propose(b"bad" + TAMPER_MARK)
    sim.propose(b"good")
    assert sim.run(until=3.0, stop=all_committed(honest, 1))
    sim.run(until=sim.now + 1.0)
    for name in honest:
        assert committed_payloads(sim, name) == [b"good"]


def test_partition_without_quorum_stalls_then_heals() -> None:
    sim, honest = pbft_network(4, config=CONFIG)
    sim.partition(["r0", "r1"], ["r2", "r3"], at=0.0)
    blocks = payloads(3)
    for p in blocks:
        sim.propose(p)
    sim.run(until=3.0)
    assert all(not sim.committed[n] for n in honest)  # neither side has a quorum of 3: no progress, no fork
    sim.heal()
    assert sim.run(until=30.0, stop=all_committed(honest, len(blocks)))
    assert_safe(sim, honest)
    for name in honest:
        assert committed_payloads(sim, name) == blocks


def test_prepared_value_survives_a_view_change() -> None:
    """r1 and r2 prepare "first" (proposed to r0 only) but cannot commit it: r3 never saw the pre-prepare and
    r0 is cut off. The new view must re-propose the prepared value at height 1 (Castro & Liskov), not the
    next queued request, even though only the view changes carry its payload to r3."""
    sim, honest = pbft_network(4, config=CONFIG, delay=0.01)
    sim.partition(["r3"], at=0.0)  # r3 misses the PRE-PREPARE and the PREPAREs
    sim.propose(b"first", to="r0")  # PRE-PREPARE at 0.00, PREPAREs at 0.01, COMMITs at 0.02
    sim.partition(["r0"], at=0.015)  # then r0 is cut off and r3 is back: 2 COMMITs < quorum 3
    sim.propose(b"second", to=["r1", "r2", "r3"], at=0.05)
    sim.run(until=0.2)
    for name in ("r1", "r2", "r3"):
        r = sim.replicas[name]
        assert isinstance(r, PbftReplica) and r.view == 0 and not sim.committed[name]
        assert (1 in r.prepared) == (name != "r3")
    assert sim.run(until=6.0, stop=all_committed(["r1", "r2", "r3"], 2))
    assert_safe(sim, honest)
    for name in ("r1", "r2", "r3"):
        r = sim.replicas[name]
        assert isinstance(r, PbftReplica) and r.view >= 1
        assert committed_payloads(sim, name) == [b"first", b"second"]


def test_lossy_network_still_commits() -> None:
    sim, honest = pbft_network(4, config=CONFIG, drop=0.1)
    blocks = payloads(6)
    for p in blocks:
        sim.propose(p)
    assert sim.run(until=30.0, stop=all_committed(honest, len(blocks)))
    assert_safe(sim, honest)
    assert sim.counters["lost_at_random"] > 0


def test_a_replica_without_the_request_joins_the_view_change() -> None:
    """Only r1 and r2 hold the request, so only they time out on the silent primary; r3 has nothing pending.
    Two view changes (f + 1) for a higher view pull r3 along, and the new view gets its quorum of 3."""
    sim, honest = pbft_network(4, {"r0": lambda inner, *_: Silent(inner)}, config=CONFIG)
    sim.propose(b"only-some", to=["r1", "r2"])
    assert sim.run(until=5.0, stop=all_committed(honest, 1))
    r3 = sim.replicas["r3"]
    assert isinstance(r3, PbftReplica) and r3.view == 1 and r3.stats.events["view_change"] == 1
    assert committed_payloads(sim, "r3") == [b"only-some"]
