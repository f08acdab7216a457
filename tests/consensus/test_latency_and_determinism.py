"""Determinism of whole runs (same seed, same trace) and the latency measurements."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bmoe.consensus.byzantine import Garbage
from bmoe.consensus.sim import Simulator
from bmoe.experiments.pow_network.latency import measure_latency
from bmoe.experiments.pow_network.miner import PowConfig
from tests.consensus.helpers import SEED, all_committed, payloads, pbft_network, pow_network


def pbft_run(seed: int) -> Simulator:
    sim, honest = pbft_network(
        4, {"r0": lambda inner, _i, v: Garbage(inner, list(v), seed=SEED)}, seed=seed, drop=0.05)
    for p in payloads(5):
        sim.propose(p)
    assert sim.run(until=30.0, stop=all_committed(honest, 5))
    return sim


def pow_run(seed: int) -> Simulator:
    sim = pow_network({"m0": 0.5, "m1": 0.3, "m2": 0.2}, config=PowConfig(difficulty=8, rate=512.0), seed=seed)
    sim.run(until=10.0)
    return sim


@pytest.mark.parametrize("run", [pbft_run, pow_run])
def test_same_seed_same_trace_different_seed_different_trace(run) -> None:  # type: ignore[no-untyped-def]
    a, b, c = run(1), run(1), run(2)
    assert a.trace_digest() == b.trace_digest()
    assert {n: a.chain(n) for n in a.names} == {n: b.chain(n) for n in b.names}
    assert a.trace_digest() != c.trace_digest()


def test_pbft_latency_is_three_message_delays() -> None:
    report = measure_latency("pbft", n=4, delay=0.02, blocks=6)
    assert report.seconds_per_block == pytest.approx(0.06)
    assert report.commit_latency == pytest.approx(0.06)
    bigger = measure_latency("pbft", n=7, delay=0.02, blocks=6)
    assert bigger.messages_per_block > 2 * report.messages_per_block  # quadratic in n


def test_pow_block_interval_follows_difficulty_over_rate() -> None:
    report = measure_latency("pow", miners=3, difficulty=8, rate=512.0, blocks=30, delay=0.01)
    expected = 2**8 / 512.0
    assert 0.5 * expected <= report.seconds_per_block <= 2 * expected
    assert report.commit_latency > 3 * expected * 0.5  # k = 3 blocks deep, at least


def test_unknown_engine() -> None:
    with pytest.raises(ValueError):
        measure_latency("raft")


def test_traces_do_not_depend_on_the_interpreter_hash_seed() -> None:
    """Set iteration order varies with PYTHONHASHSEED; no trace may depend on it. This process hashes with
    a random seed (or whatever the caller fixed); a child with another fixed one must get the same traces."""
    code = ("import logging; logging.disable(logging.WARNING);"
            "from tests.consensus.test_latency_and_determinism import pbft_run, pow_run;"
            "print(pbft_run(3).trace_digest(), pow_run(3).trace_digest())")
    root = Path(__file__).resolve().parents[2]
    other = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    env = {**os.environ, "PYTHONHASHSEED": other, "PYTHONPATH": f"{root}{os.pathsep}{root / 'src'}"}
    child = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                           timeout=120, check=True)
    assert child.stdout.split() == [pbft_run(3).trace_digest(), pow_run(3).trace_digest()]
