"""Verified generation on edge processes against the same session in one process: tokens/s, round trips, and the
per-layer round trip of a fast-path call over loopback (p50/p99).

Starts M ``python -m bmoe.net.generation`` processes on 127.0.0.1 (their start is not timed), then generates the
same seeded requests three ways, each to the end: the plain engine (no protocol), the verified session with
in-process edges, and the verified session with the edge processes (the tokens must be the in-process ones). Then
times ``--calls`` fast-path calls to one edge process (one layer, two experts' rows, as a decoding step sends them)
against the same call in process.

Last, the throughput on the edge processes against load: ``--load`` concurrent requests decoded together.

    python benchmarks/bench_generation_cluster.py [--edges 4] [--requests 4] [--max-tokens 32] [--hidden 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bmoe.lm.config import LMConfig
from bmoe.lm.decoding.engine import DecodingEngine
from bmoe.lm.decoding.expert_calls import ModelExperts
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import MoETransformer, build_model
from bmoe.net.generation.local import LocalEdges, prepare_model
from bmoe.run.generation import GenerationSettings, open_session, session_validator


def requests(config: LMConfig, count: int, max_tokens: int) -> list[tuple[list[int], SamplingParams]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.randint(0, config.vocab_size, (8,), generator=generator).tolist(),
             SamplingParams(max_tokens=max_tokens, temperature=0.8, seed=i)) for i in range(count)]


def run(engine: object, work: list[tuple[list[int], SamplingParams]]) -> tuple[list[list[int]], float]:
    """Every request through ``engine`` (DecodingEngine's interface) to its end: the tokens and the seconds."""
    started = time.perf_counter()
    ids = [engine.submit(prompt, params) for prompt, params in work]  # type: ignore[attr-defined]
    while engine.busy:  # type: ignore[attr-defined]
        engine.step()  # type: ignore[attr-defined]
    return [engine.result(i).tokens for i in ids], time.perf_counter() - started  # type: ignore[attr-defined]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=4)
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--chunk-steps", type=int, default=16)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, here and in each edge process")
    parser.add_argument("--load", default="1,4,16", help="concurrent requests for the throughput-against-load table "
                        "(comma-separated; empty: skip it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # more threads than free cores make every small product wait for them
    config = LMConfig(vocab_size=256, hidden_size=args.hidden, intermediate_size=2 * args.hidden,
                      num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=2,
                      num_local_experts=args.experts, num_experts_per_tok=2, max_position_embeddings=128)
    model: MoETransformer = build_model(config, 0).eval()
    settings = GenerationSettings(edges=args.edges, replicas=1, chunk_steps=args.chunk_steps)
    work = requests(config, args.requests, args.max_tokens)
    print(f"model d={config.hidden_size}, {config.num_hidden_layers} layers x {config.num_local_experts} experts "
          f"top-2; {args.requests} requests x {args.max_tokens} tokens; M={args.edges}, r=1, chunk "
          f"{args.chunk_steps} steps, {args.threads} torch thread(s); load average before {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        store, model_file = prepare_model(Path(tmp), model)
        validator = session_validator(model, settings)
        with LocalEdges(Path(tmp), args.edges, store, model_file, validator.address,
                        threads=args.threads) as edges:
            plain, plain_s = run(DecodingEngine(model), work)
            inproc = open_session(model, settings)
            verified, verified_s = run(inproc.decoding, work)
            remote = edges.remote(validator)
            cluster = open_session(model, settings, edges=remote)
            on_cluster, cluster_s = run(cluster.decoding, work)
            assert verified == plain and on_cluster == plain, "the generations differ"
            tokens = sum(len(t) for t in plain)
            steps = cluster.decoding.stats
            computes = sum(e.requests["/compute"] for e in remote)
            commits = sum(e.requests["/commit"] for e in remote)
            print(f"tokens/s: plain engine {tokens / plain_s:.1f}, verified in process {tokens / verified_s:.1f}, "
                  f"verified on {args.edges} edge processes {tokens / cluster_s:.1f} "
                  f"({cluster_s / verified_s:.1f}x the in-process time)")
            print(f"cluster round trips: {computes} compute ({computes / tokens:.1f} a token), {commits} commit "
                  f"({commits / tokens:.1f} a token), {steps.chunks} chunks")
            rtts = []
            local = ModelExperts(model)
            rows = {expert: torch.randn(2, config.hidden_size) for expert in (0, 1)}  # (2, d) each
            edge = edges.remote(validator)[0]
            local_s = []
            for _ in range(args.calls):
                started = time.perf_counter()
                edge.compute(1, rows)
                rtts.append(time.perf_counter() - started)
                started = time.perf_counter()
                local(1, rows)
                local_s.append(time.perf_counter() - started)
            print(f"fast-path call (layer 1, 2 experts x 2 rows) over loopback: p50 {percentile(rtts, 0.5) * 1e3:.2f}"
                  f" ms, p99 {percentile(rtts, 0.99) * 1e3:.2f} ms, min {min(rtts) * 1e3:.2f} ms; the same call in "
                  f"process p50 "
                  f"{statistics.median(local_s) * 1e3:.3f} ms")
            for count in [int(n) for n in args.load.split(",") if n]:
                batch = requests(config, count, args.max_tokens)
                session = open_session(model, settings, edges=edges.remote(validator))
                generated, seconds = run(session.decoding, batch)
                print(f"{count:>3} concurrent requests on the edge processes: "
                      f"{sum(len(t) for t in generated) / seconds:.1f} tokens/s (continuous batching: one call per "
                      f"(layer, expert) a step, whatever the batch)")
    print(f"load average after {os.getloadavg()[0]:.1f} (2 cores shared with other work)")


if __name__ == "__main__":
    main()
