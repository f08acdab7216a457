"""PBFT against Byzantine replicas: up to f of them (safety and liveness hold), then f + 1 (what breaks).

Faulty replicas are r0..r{f-1}, so the primary of view 0 is always one of them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bmoe.consensus.byzantine import TAMPER_MARK, Equivocate, Garbage, Replay, Silent, TamperProposals, TamperVotes
from bmoe.consensus.engine import ConsensusReplica
from bmoe.consensus.pbft import PbftConfig, PbftReplica
from bmoe.consensus.pbft_rules import max_faulty
from bmoe.consensus.sim import Simulator
from bmoe.ledger.keys import Identity
from tests.consensus.helpers import (
    SEED,
    Wrap,
    all_committed,
    assert_safe,
    committed_payloads,
    payloads,
    pbft_network,
)

CONFIG = PbftConfig(timeout=0.3)


def silent(inner: ConsensusReplica, identity: Identity, validators: dict[str, str]) -> ConsensusReplica:
    return Silent(inner)


def garbage(inner: ConsensusReplica, identity: Identity, validators: dict[str, str]) -> ConsensusReplica:
    return Garbage(inner, list(validators), seed=SEED)


def replay(inner: ConsensusReplica, identity: Identity, validators: dict[str, str]) -> ConsensusReplica:
    return Replay(inner, list(validators), seed=SEED)


def tamper(inner: ConsensusReplica, identity: Identity, validators: dict[str, str]) -> ConsensusReplica:
    return TamperVotes(TamperProposals(inner), identity, validators)


def equivocate(colluders: list[str]) -> Wrap:
    def wrap(inner: ConsensusReplica, identity: Identity, validators: dict[str, str]) -> ConsensusReplica:
        return Equivocate(inner, identity, validators, colluders)
    return wrap


BEHAVIOURS: dict[str, Callable[[list[str]], Wrap]] = {
    "silent": lambda names: silent,
    "garbage": lambda names: garbage,
    "replay": lambda names: replay,
    "tamper": lambda names: tamper,
    "equivocate": equivocate,
}


def run_with(n: int, behaviour: str, count: int, blocks: list[bytes],
             until: float) -> tuple[Simulator, list[str], bool]:
    """``count`` replicas r0.. (so the first primary too) behave as ``behaviour``; propose ``blocks`` to all."""
    names = [f"r{i}" for i in range(count)]
    wrap = BEHAVIOURS[behaviour](names)
    sim, honest = pbft_network(n, {name: wrap for name in names}, config=CONFIG)
    for p in blocks:
        sim.propose(p)
    done = sim.run(until=until, stop=all_committed(honest, len(blocks)))
    return sim, honest, done


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
@pytest.mark.parametrize("n", [4, 7])
def test_up_to_f_byzantine_replicas_cannot_break_safety_or_liveness(n: int, behaviour: str) -> None:
    blocks = payloads(4)
    sim, honest, done = run_with(n, behaviour, max_faulty(n), blocks, until=8.0)
    assert done, f"liveness: honest replicas committed {[len(sim.committed[h]) for h in honest]}"
    assert_safe(sim, honest)
    for name in honest:
        committed = committed_payloads(sim, name)
        assert all(TAMPER_MARK not in p for p in committed)
        assert sorted(committed) == sorted(blocks)  # each request exactly once (order may follow the new primary)


def test_ten_replicas_with_three_equivocators() -> None:
    blocks = payloads(3)
    sim, honest, done = run_with(10, "equivocate", 3, blocks, until=8.0)
    assert done
    assert_safe(sim, honest)


def test_garbage_and_replays_are_counted_by_reason_and_never_crash() -> None:
    sim, honest = pbft_network(7, {"r0": garbage, "r1": replay}, config=CONFIG)
    for p in payloads(4):
        sim.propose(p)
    assert sim.run(until=8.0, stop=all_committed(honest, 4))
    assert_safe(sim, honest)
    rejected = sum((sim.replicas[h].stats.rejected for h in honest), start=type(sim.counters)())
    for reason in ("malformed", "oversized", "replayed", "bad_signature"):
        assert rejected[reason] > 0, (reason, dict(rejected))


# -- beyond the threshold: f + 1 faulty replicas --------------------------------------------------------------


def test_f_plus_one_silent_replicas_stop_progress_but_not_safety() -> None:
    blocks = payloads(2)
    sim, honest, done = run_with(4, "silent", 2, blocks, until=20.0)
    assert not done
    assert all(not sim.committed[h] for h in honest)  # 2 honest < quorum 3: nothing commits, ever
    views = [sim.replicas[h].view for h in honest]  # type: ignore[attr-defined]
    assert max(views) >= 2  # they keep trying views, with doubling timeouts
    changes = sum(sim.replicas[h].stats.events["view_change"] for h in honest)
    assert changes <= 2 * 8  # back-off: about log2(20 s / 0.3 s) view changes each, not one per timeout


def test_f_plus_one_equivocators_can_fork_the_honest_replicas() -> None:
    """Beyond f the quorum-intersection argument fails: colluding r0 (primary) and r1 tell r2 "A" and r3
    "A|equivocation"; each honest replica sees a full quorum for its value and commits it. This is the
    documented limit: PBFT's safety needs at most f = floor((n - 1) / 3) Byzantine replicas."""
    blocks = payloads(1)
    sim, honest, _ = run_with(4, "equivocate", 2, blocks, until=3.0)
    assert honest == ["r2", "r3"]
    a, b = sim.chain("r2")[:1], sim.chain("r3")[:1]
    assert a and b and a != b  # same height, different blocks: safety violated
    assert committed_payloads(sim, "r3")[0].endswith(b"|equivocation")


def test_f_plus_one_tamperers_stop_progress_but_never_get_a_tampered_block_committed() -> None:
    """Honest replicas re-validate before they vote and before they execute, so no number of Byzantine
    replicas makes an honest one commit a payload its host refuses (validity); liveness is lost."""
    blocks = payloads(2)
    sim, honest, done = run_with(4, "tamper", 2, blocks, until=10.0)
    assert not done
    for name in honest:
        assert all(TAMPER_MARK not in p for p in committed_payloads(sim, name))
    r2 = sim.replicas["r2"]
    assert isinstance(r2, PbftReplica) and r2.stats.rejected["invalid_payload"] >= 1
