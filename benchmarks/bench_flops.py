"""Achieved GFLOP/s of expert computation in training rounds, as a fraction of this machine's fp32
matmul peak measured in the same run with the same thread count; and the B-MoE / traditional
wall-time ratio on identical runs.

Expert FLOPs per round: each activated expert e on its n_e routed samples, forward 2·n_e·P (P = the
MLP's multiply-adds per sample) and backward 2 × forward (the usual estimate), so 6·n_e·P in all.
The time counted is what the runtime spent computing forward passes and SGD steps, including
building the module and encoding the updated weights (that is what an edge really spends).

    python benchmarks/bench_flops.py [--rounds 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_round import dataset, paper_config  # same folder: run as `python benchmarks/bench_flops.py`

from bmoe.run.config import RunConfig
from bmoe.run.session import Session


def matmul_peak_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def expert_gflops(config: RunConfig, data, rounds: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(achieved GFLOP/s of expert computation, wall seconds) over ``rounds`` timed training rounds."""
    session = Session(config, dataset=data, keep_objects=False)
    session.train(rounds=1)  # warm-up
    runtime_seconds = sum(r.compute_seconds for r in session.runtimes)
    started = time.perf_counter()
    outcomes = session.train(rounds=rounds + 1)
    wall = time.perf_counter() - started
    runtime_seconds = sum(r.compute_seconds for r in session.runtimes) - runtime_seconds
    per_sample = sum(p.numel() for p in session.model().experts[0].parameters())  # multiply-adds (+ biases)
    flops = sum(6 * n * per_sample for o in outcomes for n in o.counts)
    return flops / runtime_seconds / 1e9, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    data = dataset()
    base = paper_config(data, args.rounds, 0.3, args.threads)
    peak = matmul_peak_gflops(args.threads)
    achieved, traditional_wall = expert_gflops(base.replace(framework="traditional"), data, args.rounds)
    _, bmoe_wall = expert_gflops(base, data, args.rounds)
    print(f"data: {data.name}; {args.rounds} timed rounds of 1000 samples, N=10 K=3, {args.threads} thread(s)")
    print(f"expert computation: {achieved / peak:.2f} of the fp32 matmul peak measured now (target >= 0.5)")
    print(f"B-MoE / traditional wall time on identical runs: {bmoe_wall / traditional_wall:.2f}")


if __name__ == "__main__":
    main()
