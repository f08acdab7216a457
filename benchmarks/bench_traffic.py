"""Bytes the edges move per training round, in one process: traditional, B-MoE ``all`` and ``sampled`` r = 3.

Paper scale: tasks of 1000 samples of 28x28 inputs, N = 10, K = 3, M = 10, MLP experts (784 -> 256 -> 10),
lr 0.01; each variant honest and with colluding Gaussian attackers on 30 % of the edges (p = 0.2). The counts
are the round observer's (``protocol/measure.py``): what every edge uploads (its signed answers, and the
objects the validators ask it for: commit first, upload on demand) and downloads (what its work names and it
does not already hold). Round 0 downloads the genesis experts; the steady state is the mean of the rounds
after it. Uses the real Fashion-MNIST when installed, else synthetic data of the same shape (the bytes depend
only on shapes and on which answers agree).

    python benchmarks/bench_traffic.py [--rounds 10] [--json traffic.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from bmoe.data import Dataset, load_dataset, make_synthetic
from bmoe.protocol.round import RoundOutcome
from bmoe.run.config import RunConfig
from bmoe.run.session import Session

FASHION = Path("/usr/share/datasets/fashion-mnist")
ATTACK = {"malicious_ratio": 0.3, "attack": "gaussian", "attack_params": {"probability": 0.2}, "collude": True}
VARIANTS: dict[str, dict[str, Any]] = {
    "traditional": {"framework": "traditional"},
    "all": {},
    "sampled r=3": {"assignment": "sampled", "replicas": 3},
    "traditional, 30% colluders": {"framework": "traditional", **ATTACK},
    "all, 30% colluders": ATTACK,
    "sampled r=3, 30% colluders": {"assignment": "sampled", "replicas": 3, **ATTACK},
}
MB = 1e6


def dataset() -> Dataset:
    if FASHION.is_dir():
        return load_dataset("fashion-mnist", FASHION, limit_test=1000)
    return make_synthetic(n_train=20000, n_test=1000, num_classes=10, shape=(1, 28, 28), seed=0)


def measure(config: RunConfig, data: Dataset, rounds: int) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []

    def record(outcome: RoundOutcome) -> None:
        traffic = outcome.traffic
        rows.append({"up": sum(traffic.up.values()), "down": sum(traffic.down.values()), "total": traffic.total,
                     "max_edge": traffic.max_edge})

    with Session(config, dataset=data) as session:
        session.train(rounds=rounds, on_round=record)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write every round's counts here")
    args = parser.parse_args()
    data = dataset()
    base = RunConfig(dataset=data.name, num_experts=10, top_k=3, num_edges=10, batch_size=1000, lr=0.01,
                     rounds=args.rounds, eval_every=10**6, seed=0)
    measured = {name: measure(base.replace(**changes), data, args.rounds) for name, changes in VARIANTS.items()}
    print(f"data: {data.name}, {args.rounds} rounds of 1000 samples, N=10 K=3 M=10; MB per training round "
          f"(round 0 | mean of rounds 1-{args.rounds - 1}); total / traditional's in the last column")
    print(f"{'variant':28s} {'up':>13s} {'down':>15s} {'total':>15s} {'busiest edge':>13s} {'x trad.':>8s}")
    for name, rows in measured.items():
        first, rest = rows[0], rows[1:] or rows
        mean = {key: statistics.mean(row[key] for row in rest) for key in first}
        trad = measured["traditional, 30% colluders" if "colluders" in name else "traditional"]
        trad_mean = statistics.mean(row["total"] for row in (trad[1:] or trad))
        cells = [f"{first[key] / MB:5.1f} | {mean[key] / MB:5.1f}" for key in ("up", "down", "total", "max_edge")]
        print(f"{name:28s} {cells[0]:>13s} {cells[1]:>15s} {cells[2]:>15s} {cells[3]:>13s} "
              f"{mean['total'] / trad_mean:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(measured, indent=1))


if __name__ == "__main__":
    main()
