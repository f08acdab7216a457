"""Measured latencies of the two engines in the simulator: time per sealed block vs n, delay, difficulty.

Owns small, seeded experiments that report simulated seconds (the network model's time, not this
machine's) and message counts, plus the wall-clock cost of running the reference code. Must not know
the engines' internals: it builds replicas, drives the simulator and reads ``Committed`` records.

Two numbers per run:

* ``seconds_per_block``: sealing throughput. PBFT: many requests queued at once, time / blocks.
  PoW: the growth of the final chain, time / height.
* ``commit_latency``: one request at a time, the mean time from ``Propose`` (to every replica) until
  every honest replica reported it ``Committed`` (PBFT: final; PoW: ``k`` blocks' work deep).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bmoe.consensus.engine import ConsensusReplica, Validate
from bmoe.consensus.pbft import PbftConfig, PbftReplica
from bmoe.consensus.pbft_rules import max_faulty
from bmoe.consensus.sim import Delay, Simulator
from bmoe.experiments.pow_network.miner import PowConfig, PowMiner
from bmoe.ledger.keys import derive_identity


def _accept(height: int, payload: bytes) -> str | None:
    return None


@dataclass(frozen=True)
class LatencyReport:
    engine: str
    params: dict[str, Any]
    blocks: int
    seconds_per_block: float  # simulated
    commit_latency: float  # simulated, propose -> committed at every replica
    messages_per_block: float
    bytes_per_block: float
    wall_seconds_per_block: float  # this machine, running the Python reference code
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"engine": self.engine, **self.params, "blocks": self.blocks,
                "s_per_block": round(self.seconds_per_block, 4), "latency_s": round(self.commit_latency, 4),
                "msgs_per_block": round(self.messages_per_block, 1), "bytes_per_block": round(self.bytes_per_block),
                "wall_ms_per_block": round(1000 * self.wall_seconds_per_block, 2), **self.extra}


def _closed_loop(sim: Simulator, names: Sequence[str], count: int, horizon: float) -> list[float]:
    """Propose one payload at a time; each latency is propose -> committed at every replica in ``names``."""
    latencies = []
    for i in range(count):
        payload = f"latency-probe-{i}".encode()
        start = sim.now
        sim.propose(payload)
        done = sim.run(until=start + horizon, stop=lambda s, p=payload: all(  # type: ignore[misc]
            any(c.payload == p for c in s.committed[n]) for n in names))
        if not done:
            raise RuntimeError(f"request {i} not committed within {horizon} simulated seconds")
        latencies.append(sim.now - start)
    return latencies


def _pbft_sim(n: int, delay: Delay, seed: int, config: PbftConfig, validate: Validate) -> Simulator:
    ids = [derive_identity(seed, f"r{i}") for i in range(n)]
    validators = {i.name: i.address for i in ids}
    replicas: list[ConsensusReplica] = [PbftReplica(i, validators, validate, config) for i in ids]
    return Simulator(replicas, seed=seed, delay=delay)


def measure_pbft(n: int = 4, *, delay: Delay = (0.01, 0.03), blocks: int = 10, seed: int = 0,
                 config: PbftConfig | None = None) -> LatencyReport:
    """PBFT with ``n`` honest replicas: throughput (``blocks`` queued at once) and one-at-a-time latency."""
    config = config or PbftConfig()
    sim = _pbft_sim(n, delay, seed, config, _accept)
    started = time.perf_counter()
    for i in range(blocks):
        sim.propose(f"block-{i}".encode())
    if not sim.run(until=1e6, stop=lambda s: all(len(s.committed[x]) >= blocks for x in s.names)):
        raise RuntimeError("PBFT did not commit the requests")
    wall = time.perf_counter() - started
    per_block = sim.now / blocks
    sent, sent_bytes = sim.counters["sent"], sim.counters["bytes_sent"]
    latencies = _closed_loop(sim, sim.names, max(3, blocks // 2), horizon=1e4)
    return LatencyReport("pbft", {"n": n, "f": max_faulty(n), "delay": delay}, blocks, per_block,
                         sum(latencies) / len(latencies), sent / blocks, sent_bytes / blocks, wall / blocks)


def measure_pow(miners: int = 3, *, difficulty: int = 10, rate: float = 2048.0, delay: Delay = (0.02, 0.08),
                blocks: int = 10, confirmations: int = 3, seed: int = 0,
                config: PowConfig | None = None) -> LatencyReport:
    """PoW with ``miners`` equal miners sharing ``rate`` hashes per second: block interval, stale rate,
    and the time for one request to become ``confirmations`` deep everywhere."""
    base = config or PowConfig()
    config = dataclasses.replace(base, difficulty=difficulty, rate=rate, confirmations=confirmations,
                                 chain_id=f"{base.chain_id}|latency|{seed}")
    ids = [derive_identity(seed, f"m{i}") for i in range(miners)]
    registry = {i.name: i.address for i in ids}
    replicas: list[ConsensusReplica] = [PowMiner(i, registry, _accept, 1 / miners, config) for i in ids]
    sim = Simulator(replicas, seed=seed, delay=delay)
    started = time.perf_counter()
    if not sim.run(until=1e6, stop=lambda s: all(len(s.committed[x]) >= blocks for x in s.names)):
        raise RuntimeError("PoW did not seal the blocks")
    wall = time.perf_counter() - started
    first = sim.commit_times[sim.names[0]]
    per_block = (first[blocks - 1] - first[0]) / (blocks - 1) if blocks > 1 else first[0]
    sent, sent_bytes = sim.counters["sent"], sim.counters["bytes_sent"]
    mined = sum(r.stats.events["mined"] for r in replicas)
    in_chain = max(len(r.best_chain()) for r in replicas if isinstance(r, PowMiner))
    latencies = _closed_loop(sim, sim.names, 3, horizon=1e4)
    return LatencyReport("pow", {"miners": miners, "difficulty": difficulty, "rate": rate, "delay": delay,
                                 "k": confirmations}, blocks, per_block, sum(latencies) / len(latencies),
                         sent / blocks, sent_bytes / blocks, wall / blocks,
                         {"stale_rate": round(1 - in_chain / mined, 3) if mined else 0.0,
                          "expected_s_per_block": 2**difficulty / rate})


def measure_latency(engine: str = "pbft", **params: Any) -> LatencyReport:
    """``measure_latency("pbft", n=7, delay=0.02)`` or ``measure_latency("pow", miners=5, difficulty=12)``."""
    if engine == "pbft":
        return measure_pbft(**params)
    if engine == "pow":
        return measure_pow(**params)
    raise ValueError(f"unknown engine {engine!r}; choose pbft or pow")


def latency_table(seed: int = 0) -> list[dict[str, Any]]:
    """The sweep reported in the package notes: PBFT over n and delay, PoW over difficulty and miners."""
    rows = [measure_pbft(n, delay=d, seed=seed).row() for n in (4, 7, 10) for d in (0.01, 0.05)]
    rows += [measure_pow(m, difficulty=d, blocks=30, seed=seed).row() for d in (8, 10, 12) for m in (3, 5)]
    return rows
