"""The simulator itself: delays, loss, partitions, crashes, timers, clocks, determinism."""

from __future__ import annotations

import pytest

from bmoe.consensus.engine import (
    Action,
    Committed,
    ConsensusReplica,
    Deliver,
    Event,
    Propose,
    ReplicaStats,
    Send,
    SetTimer,
    Tick,
)
from bmoe.consensus.sim import Simulator


class Echo:
    """A toy replica: broadcasts every proposal, commits what it receives, and asks for a tick at 5.0."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._stats = ReplicaStats()
        self.seen: list[tuple[str, object]] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def stats(self) -> ReplicaStats:
        return self._stats

    def handle(self, event: Event) -> list[Action]:
        if isinstance(event, Tick):
            self.seen.append(("tick", event.now))
            return [SetTimer(5.0)] if event.now == 0.0 else []
        if isinstance(event, Propose):
            return [Send(None, event.payload)]
        assert isinstance(event, Deliver)
        self.seen.append(("deliver", event.message))
        height = sum(1 for kind, _ in self.seen if kind == "deliver")
        return [Committed(height, event.sender, event.message, {})]


def network(n: int = 3, **kwargs: object) -> tuple[Simulator, list[Echo]]:
    replicas = [Echo(f"e{i}") for i in range(n)]
    return Simulator(replicas, **kwargs), replicas  # type: ignore[arg-type]


def test_echo_is_a_consensus_replica() -> None:
    assert isinstance(Echo("x"), ConsensusReplica)


def test_fixed_and_per_link_delays() -> None:
    sim, _ = network(delay=0.5, link_delay={("e0", "e2"): 2.0})
    sim.propose(b"hi", to="e0", at=1.0)
    sim.run(until=10.0)
    assert sim.commit_times["e1"] == [1.5]
    assert sim.commit_times["e2"] == [3.0]
    assert sim.committed["e0"] == []  # a broadcast does not come back to its sender


def test_uniform_delay_range() -> None:
    sim, _ = network(10, delay=(0.2, 0.4))
    sim.propose(b"hi", to="e0")
    sim.run(until=1.0)
    times = [t for n in sim.names if n != "e0" for t in sim.commit_times[n]]
    assert len(times) == 9 and all(0.2 <= t <= 0.4 for t in times) and len(set(times)) > 1


def test_random_loss_is_seeded() -> None:
    counts = []
    for _ in range(2):
        sim, _ = network(5, drop=0.5, seed=3)
        for i in range(40):
            sim.propose(str(i).encode(), to="e0")
        sim.run(until=5.0)
        counts.append(sim.counters["lost_at_random"])
    assert counts[0] == counts[1] and 40 < counts[0] < 120  # 160 messages, about half lost


def test_partitions_and_healing() -> None:
    sim, _ = network(3, delay=0.1)
    sim.partition(["e0"], at=0.0)
    sim.propose(b"cut", to="e0", at=0.5)
    sim.heal(at=1.0)
    sim.propose(b"healed", to="e0", at=1.5)
    sim.run(until=3.0)
    assert [c.payload for c in sim.committed["e1"]] == [b"healed"]
    assert sim.counters["lost_to_partition"] == 2


def test_crash_loses_messages_and_restart_ticks() -> None:
    sim, replicas = network(2, delay=0.1)
    sim.crash("e1", at=0.0)
    sim.propose(b"lost", to="e0", at=0.5)
    sim.restart("e1", at=2.0)
    sim.propose(b"kept", to="e0", at=2.5)
    sim.run(until=10.0)
    assert [c.payload for c in sim.committed["e1"]] == [b"kept"]
    ticks = [t for kind, t in replicas[1].seen if kind == "tick"]
    assert 2.0 in ticks and 5.0 not in ticks  # its start-up tick was lost, so it never asked for 5.0
    assert ticks == sorted(ticks)


def test_timers_and_clock_ticks() -> None:
    sim, replicas = network(2, delay=0.25)
    sim.propose(b"x", to="e0", at=1.0)
    sim.run(until=10.0)
    ticks = [t for kind, t in replicas[1].seen if kind == "tick"]
    assert ticks == [0.0, 1.25, 5.0]  # start, clock update before the delivery at 1.25, the timer


def test_stop_predicate_and_time_limit() -> None:
    sim, _ = network(3, delay=1.0)
    sim.propose(b"a", to="e0")
    assert sim.run(until=100.0, stop=lambda s: bool(s.committed["e1"]))
    assert sim.now == 1.0
    assert not sim.run(until=50.0, stop=lambda s: len(s.committed["e1"]) > 5)
    assert sim.now == 50.0


def test_same_seed_same_trace() -> None:
    digests = []
    for seed in (1, 1, 2):
        sim, _ = network(4, delay=(0.1, 0.9), drop=0.2, seed=seed, keep_trace=True)
        for i in range(10):
            sim.propose(str(i).encode(), to=f"e{i % 4}", at=i * 0.1)
        sim.run(until=20.0)
        digests.append(sim.trace_digest())
        assert sim.trace
    assert digests[0] == digests[1] != digests[2]


@pytest.mark.parametrize("kwargs", [{"delay": -1.0}, {"delay": (2.0, 1.0)}, {"drop": 1.0},
                                    {"link_delay": {("e0", "e1"): (1.0,)}}])
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        network(**kwargs)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError):
        Simulator([Echo("a"), Echo("a")])  # type: ignore[list-item]
