"""Wall-time ratios of training rounds measured in one run (never bare seconds as a result).

B-MoE / traditional on the same training run (paper scale: tasks of 1000 samples of 28x28 inputs,
N=10, K=3, M=10, MLP experts, colluding Gaussian attackers on 30 % of the edges, p=0.2), and
B-MoE with compute sharing off / on. Uses the real Fashion-MNIST when the Debian package is
installed, else synthetic data of the same shape (the cost of a round depends only on shapes).

    python benchmarks/bench_round.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bmoe.data import Dataset, load_dataset, make_synthetic
from bmoe.run.config import RunConfig
from bmoe.run.session import Session

FASHION = Path("/usr/share/datasets/fashion-mnist")


def dataset() -> Dataset:
    if FASHION.is_dir():
        return load_dataset("fashion-mnist", FASHION, limit_test=1000)
    return make_synthetic(n_train=20000, n_test=1000, num_classes=10, shape=(1, 28, 28), seed=0)


def paper_config(data: Dataset, rounds: int, ratio: float, threads: int = 1) -> RunConfig:
    """Paper scale: tasks of 1000 samples, N=10, K=3, M=10, lr 0.01, colluding Gaussian attackers."""
    return RunConfig(dataset=data.name, rounds=rounds, batch_size=1000, lr=0.01, eval_every=10**6,
                     malicious_ratio=ratio, threads=threads)


def timed_training(config: RunConfig, data: Dataset) -> float:
    session = Session(config, dataset=data)
    session.train(rounds=1)  # warm-up round (allocations, first-touch), not timed
    started = time.perf_counter()
    session.train(rounds=config.rounds + 1)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--ratio", type=float, default=0.3)
    args = parser.parse_args()
    data = dataset()
    base = paper_config(data, args.rounds, args.ratio)
    times = {
        "traditional": timed_training(base.replace(framework="traditional"), data),
        "bmoe": timed_training(base, data),
        "bmoe_no_sharing": timed_training(base.replace(share_compute=False), data),
    }
    print(f"data: {data.name}, {args.rounds} timed rounds of 1000 samples, N=10 K=3 M=10, "
          f"malicious ratio {args.ratio} (colluding Gaussian, p=0.2)")
    print(f"B-MoE / traditional wall time: {times['bmoe'] / times['traditional']:.2f}  (target <= 1.3)")
    print(f"B-MoE sharing off / on:        {times['bmoe_no_sharing'] / times['bmoe']:.2f}")


if __name__ == "__main__":
    main()
