"""A language model's training round through B-MoE against the same step without the protocol, in one run.

Three runs of the default model (``LMSettings`` defaults: 4 layers, d = 128, 8 experts top-2, context 64, 12
sequences a round) on the same synthetic token ids (vocabulary 65, seeded: the corpus need not be cached) and the
same batches and learning-rate schedule, stepped in turn so the neighbours on a shared machine slow all three alike:

- **local**: the model trained in one process without the protocol (forward, backward, one AdamW step);
- **all**: B-MoE in process, every edge computing every call (``assignment all``, M identical honest edges,
  ``share_compute`` on: each identical honest replica computed once), proof of work at difficulty 0;
- **sampled**: the same with ``assignment sampled`` (r replicas per call).

After a warm-up round each, every run's CPU seconds per round (``process_time``: this process only, so the
neighbours' load counts less than in wall seconds) are summed over the measured rounds and printed as ratios to
the local run, with what a deployment pays per round, read from the round outcomes: every edge's compute summed
(``edge_total_seconds``), the busiest edge's compute per task summed over the round's sequential tasks
(``edge_seconds``) and the bytes moved (``traffic.total``). ``--profile`` prints the B-MoE round's hottest
functions.

    python benchmarks/lm_round.py                      # 5 measured rounds, 8 edges, sampled r = 2
    python benchmarks/lm_round.py --rounds 10 --edges 10 --replicas 3
    python benchmarks/lm_round.py --profile all        # where a B-MoE round spends its time
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from bmoe.lm.model import build_model
from bmoe.lm.optim import adamw_step, with_moments
from bmoe.protocol.lm.round import run_lm_round
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.session import LMSession

VOCAB = 65  # the Shakespeare characters' vocabulary
TOKENS = 200_000  # synthetic training text, seeded


@dataclass
class Measured:
    """One run's measured rounds: CPU and wall seconds, and (B-MoE) what the deployment pays."""

    cpu: float = 0.0
    wall: float = 0.0
    rounds: int = 0
    edge_total: float = 0.0
    edge_busiest: float = 0.0
    traffic: int = 0
    losses: list[float] = field(default_factory=list)


def make_session(rounds: int, edges: int, assignment: str, replicas: int) -> LMSession:
    """The default model's session on synthetic ids: ``rounds`` steps, ``edges`` honest edges."""
    run: dict[str, Any] = {"num_edges": edges, "difficulty": 0, "seed": 0, "assignment": assignment}
    if assignment == "sampled":
        run["replicas"] = replicas
    config = LMRunConfig.build({"steps": rounds, "validation_every": 10**6}, run)
    ids = torch.randint(0, VOCAB, (TOKENS,), generator=torch.Generator().manual_seed(0))
    cut = int(TOKENS * 0.9)
    return LMSession(config, bytes(range(VOCAB)), VOCAB, ids[:cut], ids[cut:])


def local_stepper(session: LMSession) -> Callable[[int], float]:
    """One training step of the same model without the protocol, on the session's batches and schedule (the
    loop the bit-identity test compares B-MoE's training with); returns the loss."""
    model = build_model(session.model_config, session.config.run.seed)
    params = dict(model.named_parameters())
    state = with_moments({name: p.detach().clone() for name, p in params.items()})

    def step(index: int) -> float:
        nonlocal state
        x, y = session.batch(session.train_ids, index, 0)
        model.zero_grad()
        out = model(x, y)
        assert out.loss is not None
        out.loss.backward()
        state = adamw_step(state, {n: p.grad for n, p in params.items() if p.grad is not None}, session.lr(index))
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(state[name])
        assert out.cross_entropy is not None
        return float(out.cross_entropy.detach())

    return step


def bmoe_stepper(session: LMSession, measured: Measured) -> Callable[[int], float]:
    """One B-MoE round of ``session`` (``LMSession.train``'s round, without its validation); adds what the
    deployment pays to ``measured``."""

    def step(index: int) -> float:
        x, y = session.batch(session.train_ids, index, 0)
        outcome = run_lm_round(session.participants, session.validator, index, x, y, True, session.lr(index))
        measured.edge_total += outcome.edge_total_seconds
        measured.edge_busiest += outcome.edge_seconds
        measured.traffic += outcome.traffic.total
        assert outcome.loss is not None
        return outcome.loss

    return step


def timed(step: Callable[[int], float], index: int, measured: Measured | None,
          profiler: cProfile.Profile | None = None) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    loss = step(index)
    if profiler is not None:
        profiler.disable()
    if measured is not None:
        measured.cpu += time.process_time() - cpu
        measured.wall += time.perf_counter() - wall
        measured.rounds += 1
        measured.losses.append(loss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (after one warm-up round)")
    parser.add_argument("--edges", type=int, default=8, help="edges M")
    parser.add_argument("--replicas", type=int, default=2, help="replicas r of assignment sampled")
    parser.add_argument("--profile", choices=("all", "sampled"), help="profile that run's measured rounds")
    args = parser.parse_args()
    torch.manual_seed(0)
    total = args.rounds + 1
    runs: dict[str, Measured] = {"local": Measured(), "all": Measured(), "sampled": Measured()}
    sessions = {"all": make_session(total, args.edges, "all", args.replicas),
                "sampled": make_session(total, args.edges, "sampled", args.replicas)}
    steppers = {"local": local_stepper(sessions["all"]),
                **{name: bmoe_stepper(s, runs[name]) for name, s in sessions.items()}}
    profiler = cProfile.Profile() if args.profile else None
    for step in steppers.values():  # the warm-up round, not measured (its costs are not counted either)
        step(0)
    for name in ("all", "sampled"):
        runs[name].edge_total = runs[name].edge_busiest = runs[name].traffic = 0
    for index in range(1, total):
        for name, step in steppers.items():
            timed(step, index, runs[name], profiler if name == args.profile else None)
    load = os.getloadavg()[0]
    local = runs["local"]
    print(f"default model, {args.rounds} measured rounds, M = {args.edges} edges, sampled r = {args.replicas}; "
          f"{os.cpu_count()} cores, load average {load:.2f} (neighbours distort the absolute seconds)")
    print(f"B-MoE training bit-identical in loss to the local run: "
          f"{runs['all'].losses == local.losses and runs['sampled'].losses == local.losses}")
    print(f"{'run':>8} {'CPU/round':>10} {'ratio':>6} {'wall ratio':>10} {'edges sum/round':>16} "
          f"{'busiest/round':>14} {'bytes/round':>12}")
    for name, m in runs.items():
        deployment = "" if name == "local" else (f"{m.edge_total / m.rounds:>15.3f}s "
                                                 f"{m.edge_busiest / m.rounds:>13.3f}s "
                                                 f"{m.traffic / m.rounds / 1e6:>10.2f}MB")
        print(f"{name:>8} {m.cpu / m.rounds:>9.3f}s {m.cpu / local.cpu:>6.2f} {m.wall / local.wall:>10.2f} "
              f"{deployment}")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
