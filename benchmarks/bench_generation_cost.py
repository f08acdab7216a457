"""What verified generation costs in process (issue 25, "What it must reach"): tokens per second of
``open_session(...).decoding`` (honest edges, every chunk verified and sealed on the ledger) against the same model
decoding in one process without the protocol (``DecodingEngine`` with its in-process experts), on the same prompts
in the same batch.

The model is ``LMConfig``'s default (4 layers, d = 128, 8 experts top-2, a 64-token context, a 65-token vocabulary)
with random weights (``build_model``, seed 0: the cost does not depend on them); ``--batch`` random prompts of
``--prompt`` tokens decode together to ``--tokens`` new tokens each (temperature 0.8, seeded). The settings: r = 1
with every call checked (p = 1), r = 1 auditing a quarter of the calls (p = 0.25), r = 2 and all (every other
edge), chunks of ``--chunk-steps`` steps; then r = 1 p = 1 with chunks of 4, 16 and 64 steps. For each it prints:

- tokens per second of this process's CPU time (torch on ``--threads`` threads, one by default: on a machine
  shared with other work, CPU time is what the run itself spent, where wall time also counts the others'), the
  median of ``--repeats`` runs interleaved with the unverified run's, and the ratio to the unverified run's,
  measured in this run; the wall-clock ratio beside it (the session's setup, its genesis, is not timed: it is paid
  once per session);
- the extra expert compute: rows re-computed by replicas over the rows of the unverified run
  (``stats.replica_rows / stats.fast_rows``), and the seconds the edges spent re-computing over the seconds the
  fast path spent in its expert calls, measured;
- where the rest of the time goes: sealing (signing, applying and sealing the chunk's transaction), and the other
  verification work (hashing, commitments, records, storage);
- ledger bytes per token (``stats.ledger_bytes / stats.tokens``) and whether the tokens equal the unverified ones.

    python benchmarks/bench_generation_cost.py [--tokens 48] [--prompt 8] [--batch 8] [--repeats 3] [--edges 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bmoe.lm.config import LMConfig
from bmoe.lm.decoding.engine import DecodingEngine
from bmoe.lm.decoding.expert_calls import ExpertCaller
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import MoETransformer
from bmoe.protocol.generation.decoding import SealedChunk
from bmoe.protocol.generation.policy import ALL
from bmoe.run.generation import GenerationSession, GenerationSettings, open_session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generation_detection import model_and_requests, print_table


@dataclass(frozen=True)
class Setting:
    name: str
    replicas: int
    probability: float
    chunk_steps: int


@dataclass
class Clock:
    """Seconds spent, by what: the fast path's expert calls, the replicas' re-computation, sealing."""

    fast: float = 0.0
    replicas: float = 0.0
    seal: float = 0.0
    in_fast_path: bool = False


@dataclass
class Measure:
    seconds: list[float] = field(default_factory=list)  # CPU
    wall: list[float] = field(default_factory=list)
    clocks: list[Clock] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    same_tokens: bool = True


class TimedFastPath:
    """The engine's caller (the fast path), its time on the clock and the clock told it is in the fast path."""

    def __init__(self, inner: ExpertCaller, clock: Clock) -> None:
        self.inner, self.clock = inner, clock

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        started = time.process_time()
        self.clock.in_fast_path = True
        try:
            return self.inner(layer, routed)
        finally:
            self.clock.in_fast_path = False
            self.clock.fast += time.process_time() - started


class TimedEdgeExperts:
    """An edge's experts, the time of each call outside the fast path on the clock (a replica's re-computation)."""

    def __init__(self, inner: ExpertCaller, clock: Clock) -> None:
        self.inner, self.clock = inner, clock

    def __call__(self, layer: int, routed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        if self.clock.in_fast_path:
            return self.inner(layer, routed)
        started = time.process_time()
        try:
            return self.inner(layer, routed)
        finally:
            self.clock.replicas += time.process_time() - started


def timed_session(session: GenerationSession, clock: Clock) -> None:
    """Put ``clock`` on the session's fast path, its edges' experts and its sealing."""
    decoding = session.decoding
    decoding.engine.caller = TimedFastPath(decoding.engine.caller, clock)
    for edge in session.edges:
        edge.experts = TimedEdgeExperts(edge.experts, clock)
    record = decoding.recorder

    def recorder(payload: dict[str, Any]) -> SealedChunk:
        started = time.process_time()
        try:
            return record(payload)
        finally:
            clock.seal += time.process_time() - started
    decoding.recorder = recorder


def unverified(model: MoETransformer, prompts: list[list[int]], params: list[SamplingParams],
               clock: Clock) -> list[list[int]]:
    engine = DecodingEngine(model, max_batch=len(prompts))
    engine.caller = TimedFastPath(engine.caller, clock)
    requests = [engine.submit(prompt, p) for prompt, p in zip(prompts, params, strict=True)]
    for _ in engine.events():
        pass
    return [engine.result(request).tokens for request in requests]


def verified(model: MoETransformer, setting: Setting, edges: int, prompts: list[list[int]],
             params: list[SamplingParams], clock: Clock) -> tuple[list[list[int]], GenerationSession, float, float]:
    """The verified run's tokens, its session, and the CPU and wall seconds its decoding took (the session's
    setup not)."""
    settings = GenerationSettings(edges=edges, replicas=setting.replicas, probability=setting.probability,
                                  chunk_steps=setting.chunk_steps, max_batch=len(prompts))
    session = open_session(model, settings)
    timed_session(session, clock)
    decoding = session.decoding
    started, wall = time.process_time(), time.perf_counter()
    requests = [decoding.submit(prompt, p) for prompt, p in zip(prompts, params, strict=True)]
    while decoding.busy:
        decoding.step()
    seconds, wall = time.process_time() - started, time.perf_counter() - wall
    return [decoding.result(request).tokens for request in requests], session, seconds, wall


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """CPU and wall seconds of ``run()``."""
    started, wall = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - started, time.perf_counter() - wall


def settings_of(chunk_steps: int) -> list[Setting]:
    main = [Setting("r=1 p=1", 1, 1.0, chunk_steps), Setting("r=1 p=0.25", 1, 0.25, chunk_steps),
            Setting("r=2", 2, 1.0, chunk_steps), Setting("all", ALL, 1.0, chunk_steps)]
    sweep = [Setting(f"r=1 p=1, chunks of {steps}", 1, 1.0, steps) for steps in (4, 16, 64) if steps != chunk_steps]
    return main + sweep


def median_clock(clocks: list[Clock]) -> Clock:
    return Clock(statistics.median(c.fast for c in clocks), statistics.median(c.replicas for c in clocks),
                 statistics.median(c.seal for c in clocks))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=48, help="new tokens per sequence")
    parser.add_argument("--prompt", type=int, default=8, help="prompt tokens per sequence")
    parser.add_argument("--batch", type=int, default=8, help="sequences decoded together")
    parser.add_argument("--edges", type=int, default=5, help="M, the edges")
    parser.add_argument("--chunk-steps", type=int, default=16, help="decoding steps per verified chunk")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measure (the median is printed)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    if min(args.tokens, args.prompt, args.batch, args.chunk_steps, args.repeats) < 1 or args.edges < 3:
        parser.error("need tokens, prompt, batch, chunk steps, repeats >= 1 and edges >= 3")
    if args.prompt + args.tokens > LMConfig(vocab_size=65).max_position_embeddings:
        parser.error("prompt + tokens must fit the model's 64-token context")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model, prompts, params = model_and_requests(args.batch, args.prompt, args.tokens)
    config = model.config
    settings = settings_of(args.chunk_steps)
    plain = Measure()
    measures = {setting.name: Measure() for setting in settings}
    load_before = os.getloadavg()
    unverified(model, prompts[:1], params[:1], Clock())  # warm up
    reference: list[list[int]] = []
    for _ in range(args.repeats):
        for setting in settings:  # each verified run beside an unverified one: load changes fall on both
            clock = Clock()
            seconds, wall = timed(lambda c=clock: reference.append(unverified(model, prompts, params, c)))
            plain.seconds.append(seconds)
            plain.wall.append(wall)
            plain.clocks.append(clock)
            clock = Clock()
            tokens, session, seconds, wall = verified(model, setting, args.edges, prompts, params, clock)
            measure = measures[setting.name]
            measure.seconds.append(seconds)
            measure.wall.append(wall)
            measure.clocks.append(clock)
            measure.stats = session.decoding.stats.to_json()
            measure.same_tokens &= tokens == reference[-1]
    load_after = os.getloadavg()
    tokens_total = args.batch * args.tokens
    plain_rate = tokens_total / statistics.median(plain.seconds)
    plain_wall = statistics.median(plain.wall)
    plain_experts = statistics.median(c.fast for c in plain.clocks)
    print(f"model: LMConfig's default ({config.num_hidden_layers} layers, d = {config.hidden_size}, "
          f"{config.num_local_experts} experts top-{config.num_experts_per_tok}), random weights; {args.batch} "
          f"prompts of {args.prompt} tokens decoded together, {args.tokens} new tokens each; {args.edges} edges; "
          f"torch threads {args.threads}; median of {args.repeats}")
    print(f"unverified (DecodingEngine, in-process experts): {plain_rate:.0f} tokens per CPU second, "
          f"{plain_experts:.3f} CPU s in expert calls; {tokens_total / plain_wall:.0f} tokens per wall second")
    rows = [["setting", "tokens/s", "x unverified", "x unverified (wall)", "replica rows / fast rows",
             "replica s / fast-path expert s", "seal s", "other verification s", "ledger B/token", "same tokens"]]
    for setting in settings:
        measure = measures[setting.name]
        seconds = statistics.median(measure.seconds)
        clock = median_clock(measure.clocks)
        stats = measure.stats
        other = seconds - clock.fast - clock.replicas - clock.seal - (statistics.median(plain.seconds) - plain_experts)
        rows.append([setting.name, f"{tokens_total / seconds:.0f}", f"{tokens_total / seconds / plain_rate:.2f}",
                     f"{plain_wall / statistics.median(measure.wall):.2f}",
                     f"{stats['replica_rows'] / stats['fast_rows']:.2f}", f"{clock.replicas / clock.fast:.2f}",
                     f"{clock.seal:.3f}", f"{max(other, 0.0):.3f}",
                     f"{stats['ledger_bytes'] / stats['tokens']:.1f}", "yes" if measure.same_tokens else "NO"])
    print_table(rows)
    print("seconds are CPU seconds of this process; other verification s: the verified run's seconds less its "
          "fast-path expert calls, its replicas, its sealing "
          "and the unverified run's seconds outside expert calls (the model's own work)")
    print(f"load average (1, 5, 15 min) before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
