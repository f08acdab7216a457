"""PBFT with every replica honest: agreement, order, liveness bound, certificates, checkpoints."""

from __future__ import annotations

import copy

import pytest

from bmoe.consensus.pbft import PbftConfig, PbftReplica
from bmoe.consensus.pbft_rules import max_faulty, quorum, verify_certificate
from tests.consensus.helpers import all_committed, assert_safe, committed_payloads, payloads, pbft_network

MAX_DELAY = 0.03  # pbft_network's default delay range is (0.01, 0.03)


@pytest.mark.parametrize("n", [4, 7, 10])
def test_honest_replicas_commit_the_same_payloads_in_order(n: int) -> None:
    sim, honest = pbft_network(n)
    blocks = payloads(6)
    for p in blocks:
        sim.propose(p)
    assert sim.run(until=10.0, stop=all_committed(honest, len(blocks)))
    assert_safe(sim, honest)
    for name in honest:
        assert committed_payloads(sim, name) == blocks  # the primary orders requests first come, first served
        assert sim.replicas[name].stats.total_rejected == 0
    # liveness bound: pre-prepare, prepare, commit = three message delays per height, no timeouts
    assert sim.now <= len(blocks) * 3 * MAX_DELAY + 1e-9


def test_thresholds() -> None:
    assert [(n, max_faulty(n), quorum(n, max_faulty(n))) for n in (1, 4, 5, 7, 10)] == [
        (1, 0, 1), (4, 1, 3), (5, 1, 4), (7, 2, 5), (10, 3, 7)]


@pytest.mark.parametrize("n", [4, 7])
def test_certificates_verify_and_tampered_ones_do_not(n: int) -> None:
    sim, honest = pbft_network(n)
    sim.propose(b"one")
    assert sim.run(until=5.0, stop=all_committed(honest, 1))
    validators = {r.name: r.identity.address for r in sim.replicas.values()}  # type: ignore[attr-defined]
    f = max_faulty(n)
    cert = sim.committed[honest[0]][0].proof
    assert verify_certificate(cert, validators, f) is None
    assert len(cert["commits"]) == quorum(n, f)
    assert cert["payload_hash"] == sim.committed[honest[0]][0].payload_hash

    def broken(change) -> dict:  # type: ignore[no-untyped-def]
        c = copy.deepcopy(cert)
        change(c)
        return c

    cases = {
        "payload hash": broken(lambda c: c.update(payload_hash="0" * 64)),
        "height": broken(lambda c: c.update(height=2)),
        "view": broken(lambda c: c.update(view=1)),
        "one signature short": broken(lambda c: c["commits"].pop()),
        "duplicate signer": broken(lambda c: c["commits"].__setitem__(-1, list(c["commits"][0]))),
        "unknown signer": broken(lambda c: c["commits"][0].__setitem__(0, "mallory")),
        "swapped signature": broken(lambda c: c["commits"][1].__setitem__(1, c["commits"][0][1])),
        "bad hex": broken(lambda c: c["commits"][0].__setitem__(1, "zz")),
        "extra field": broken(lambda c: c.update(note="x")),
        "bool height": broken(lambda c: c.update(height=True)),
    }
    for label, bad in cases.items():
        assert verify_certificate(bad, validators, f) is not None, label
    assert verify_certificate(cert, validators, f + 1) is not None  # n < 3f + 1
    without_a_signer = {k: v for k, v in validators.items() if k != cert["commits"][0][0]}
    assert verify_certificate(cert, without_a_signer, max_faulty(n - 1)) is not None
    for junk in (None, [], "cert", {"view": 0}, 7):
        assert verify_certificate(junk, validators, f) is not None


def test_checkpoints_become_stable_and_collect_the_logs() -> None:
    config = PbftConfig(checkpoint_interval=4, window=8, retain_decided=4)
    sim, honest = pbft_network(4, config=config)
    for p in payloads(18):
        sim.propose(p)
    assert sim.run(until=10.0, stop=all_committed(honest, 18))
    sim.run(until=sim.now + 0.2)  # let the last checkpoint messages arrive
    digests = set()
    for name in honest:
        r = sim.replicas[name]
        assert isinstance(r, PbftReplica)
        assert r.stable == 16
        assert len(r.stable_proof) >= r.q
        assert all(h > r.stable for (_, h) in r.slots)  # nothing logged at or below the stable checkpoint
        assert all(h > r.stable for h in r.seen)
        assert min(r.decided) > r.stable - config.retain_decided
        assert r.stats.events["slots_collected"] >= 16
        digests.add(r.digests_at[16])
    assert len(digests) == 1  # every replica reached the same state digest


def test_a_replica_that_misses_blocks_catches_up_from_certificates() -> None:
    sim, honest = pbft_network(4, config=PbftConfig(checkpoint_interval=4, timeout=0.5))
    sim.crash("r3", at=0.05)
    sim.restart("r3", at=2.0)
    blocks = payloads(12)
    for p in blocks[:6]:
        sim.propose(p, to=["r0", "r1", "r2"])
    sim.run(until=1.0)
    assert len(sim.committed["r0"]) == 6 and not sim.committed["r3"]
    for p in blocks[6:]:
        sim.propose(p, at=2.5)
    assert sim.run(until=10.0, stop=all_committed(honest, 12))
    assert_safe(sim, honest)
    r3 = sim.replicas["r3"]
    assert r3.stats.events["caught_up"] >= 1  # it took decided blocks with their certificates
    assert committed_payloads(sim, "r3") == blocks
