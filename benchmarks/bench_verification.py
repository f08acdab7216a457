"""The validators' verification time per round under each comparison, and B-MoE / traditional, measured
in one run (ratios, never bare seconds as a result).

Paper scale: tasks of 1000 samples, N=10, K=3, M=10 MLP experts, colluding Gaussian attackers on 30 %
of the edges (p=0.2). Verification is everything ``Validator.decide`` does in a round: reading the
commitments, fetching and comparing the answers (under ``tolerance``: decoding them, the pairwise
distances, the grouping and the element-wise median stored under its own CID), the accepted results'
aggregation and the decisions and misbehaviour records, for results and updates. It is timed around
the validator's own calls, so edge compute and sealing are not in it. Uses the real Fashion-MNIST
when the Debian package is installed, else synthetic data of the same shape.

    python benchmarks/bench_verification.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench_round import dataset, paper_config

from bmoe.data import Dataset
from bmoe.protocol.validator import Validator
from bmoe.run.config import RunConfig
from bmoe.run.session import Session

MIXED = "threads1=3,f64=3,chunked=2,threads2=2"


class DecideTimer:
    """Accumulates the seconds spent in ``Validator.decide`` while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original: Callable[..., Any] = Validator.decide

    def __enter__(self) -> DecideTimer:
        original = self._original

        def timed(validator: Validator, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(validator, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        Validator.decide = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Validator.decide = self._original  # type: ignore[method-assign]


def measure(config: RunConfig, data: Dataset, rounds: int) -> tuple[float, float]:
    """(verification seconds, wall seconds) per round over ``rounds`` timed rounds after a warm-up."""
    with Session(config, dataset=data) as session:
        session.train(rounds=1)  # warm-up round (allocations, first-touch), not timed
        with DecideTimer() as timer:
            started = time.perf_counter()
            session.train(rounds=rounds + 1)
            wall = time.perf_counter() - started
    return timer.seconds / rounds, wall / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    data = dataset()
    base = paper_config(data, args.rounds, 0.3)
    runs = {
        "traditional (sole rule)": base.replace(framework="traditional"),
        "bmoe exact, homogeneous fleet": base,
        "bmoe tolerance, homogeneous fleet": base.replace(comparison="tolerance"),
        "bmoe tolerance, mixed fleet": base.replace(comparison="tolerance", fleet=MIXED),
        "bmoe integer (mlp-int), mixed fleet": base.replace(comparison="integer", expert="mlp-int", fleet=MIXED),
    }
    measured = {name: measure(config, data, args.rounds) for name, config in runs.items()}
    exact_verify, exact_wall = measured["bmoe exact, homogeneous fleet"]
    _, traditional_wall = measured["traditional (sole rule)"]
    print(f"data: {data.name}, {args.rounds} timed rounds of 1000 samples, N=10 K=3 M=10, 30 % colluding "
          f"Gaussian attackers (p=0.2); mixed fleet {MIXED}")
    print(f"{'run':38s} {'verify / exact':>15s} {'verify share of round':>22s} {'round / traditional':>20s}")
    for name, (verify, wall) in measured.items():
        print(f"{name:38s} {verify / exact_verify:15.2f} {verify / wall:22.1%} {wall / traditional_wall:20.2f}")
    tolerance_verify, _ = measured["bmoe tolerance, mixed fleet"]
    print(f"tolerance (mixed fleet) / exact verification time per round: {tolerance_verify / exact_verify:.2f}")
    print(f"B-MoE / traditional round time (in process, exact):          {exact_wall / traditional_wall:.2f}")


if __name__ == "__main__":
    main()
