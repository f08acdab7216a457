"""Decoding throughput with a KV cache (``lm/decoding``) against the full recompute of ``lm/generation.generate``.

On ``LMConfig``'s default model (4 layers, d = 128, 8 experts top-2, a 64-token context; a 65-token vocabulary,
Shakespeare's characters; random weights: the cost does not depend on them), greedy from a prompt of ``--prompt``
random tokens to ``--tokens`` new ones (within the context, so the cache serves every step), it prints tokens per
second of ``generate()`` (the whole window recomputed each token), of the engine on one sequence, and of the
engine on ``--batch`` sequences together (one forward pass and one expert call per layer per step for all); the
ratios measured in this run; whether the cached tokens are ``generate()``'s; the threads and the machine's load
average before and after. Each measure is the median of ``--repeats`` runs, interleaved so a change of load
falls on both.

    python benchmarks/lm_decode.py [--tokens 56] [--prompt 8] [--batch 8] [--threads 1] [--repeats 3]
    python benchmarks/lm_decode.py --context 256 --tokens 248   # a longer context: the recompute grows with it
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from bmoe.lm.config import LMConfig
from bmoe.lm.decoding.engine import DecodingEngine
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.generation import generate
from bmoe.lm.model import MoETransformer, build_model


def engine_tokens(model: MoETransformer, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    """Greedy tokens of every prompt, decoded together by one engine."""
    engine = DecodingEngine(model, max_batch=len(prompts))
    ids = [engine.submit(prompt, SamplingParams(max_tokens=new_tokens, temperature=0)) for prompt in prompts]
    for _ in engine.events():
        pass
    return [engine.result(request).tokens for request in ids]


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=56, help="new tokens per sequence")
    parser.add_argument("--prompt", type=int, default=8, help="prompt tokens per sequence")
    parser.add_argument("--batch", type=int, default=8, help="sequences decoded together by the engine")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--context", type=int, default=64, help="the model's context (the default config's: 64)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measure (the median is printed)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = LMConfig(vocab_size=65, max_position_embeddings=args.context)
    context = config.max_position_embeddings
    if args.prompt < 1 or args.tokens < 0 or args.prompt + args.tokens > context or args.batch < 1:
        parser.error(f"need prompt >= 1, tokens >= 0, prompt + tokens <= the context ({context}), batch >= 1")
    model = build_model(config, seed=0).eval()
    generator = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, config.vocab_size, (args.prompt,), generator=generator).tolist()
               for _ in range(args.batch)]
    load_before = os.getloadavg()
    same = engine_tokens(model, prompts[:1], args.tokens)[0] == generate(model, prompts[0], args.tokens, 0.0)
    runs: dict[str, list[float]] = {"recompute": [], "cached": [], "batched": []}
    for _ in range(args.repeats):
        runs["recompute"].append(timed(lambda: generate(model, prompts[0], args.tokens, temperature=0.0)))
        runs["cached"].append(timed(lambda: engine_tokens(model, prompts[:1], args.tokens)))
        runs["batched"].append(timed(lambda: engine_tokens(model, prompts, args.tokens)))
    load_after = os.getloadavg()
    rate = {name: args.tokens * (args.batch if name == "batched" else 1) / statistics.median(seconds)
            for name, seconds in runs.items()}
    print(f"model: {config.num_hidden_layers} layers, d = {config.hidden_size}, {config.num_local_experts} experts "
          f"top-{config.num_experts_per_tok}, context {config.max_position_embeddings}; prompt {args.prompt}, "
          f"{args.tokens} new tokens, greedy; torch threads {args.threads}; median of {args.repeats}")
    print(f"load average (1, 5, 15 min) before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} on {os.cpu_count()} cores")
    print(f"generate() (full recompute)   {rate['recompute']:8.1f} tokens/s")
    print(f"engine, 1 sequence (cached)   {rate['cached']:8.1f} tokens/s   {rate['cached'] / rate['recompute']:.2f}x")
    print(f"engine, {args.batch} sequences together  {rate['batched']:8.1f} tokens/s   "
          f"{rate['batched'] / rate['recompute']:.2f}x (all sequences' tokens)")
    print(f"cached greedy tokens equal generate()'s: {same}")


if __name__ == "__main__":
    main()
