"""A heterogeneous, geo-distributed fleet serving the pretrained SmolLM2-135M MoE by placement (``run/placement.py``).

SmolLM2-135M-Instruct as an MoE (30 layers x 8 experts = 240 slots, every expert active; fetched into the cache
first if absent) answers ``--prompts`` chat prompts, greedy, ``--tokens`` tokens each, in one batch, through a
verified session (r = 1 replica, every call checked) whose edges are a fleet of devices with different memories
for expert weights, some too small for the whole model and one too small for any expert, each at an emulated
network distance: every call it answers first waits its round-trip time (in-process edges, ``DistantEdge``: the
delay is emulated in the edge, not on a socket; commitments are not delayed). Configurations:

- **single device**: the one edge that holds the whole model, h = 1 (no other holder: nothing re-computed);
- **two large devices h=2**: two edges that each hold the whole model (every call re-computed by the other);
- **fleet h=2**: the whole fleet, each slot on 2 holders (every call re-computed by its other holder);
- **fleet h=2, join + leave**: the same, a large edge joining during the first chunk and the 40% edge leaving
  during the second: each change recorded and re-placed when its chunk ends, while generation goes on.

Printed per configuration: each edge's memory, round-trip time, slots held and bytes fetched (at the end), the
calls it answered (fast path and re-computation: one round trip each) and the seconds they waited on the network
(calls x round trip), and the
verified tokens per second (wall time of the generation, setup excluded; the machine's cores are shared, so the
numbers are indicative); then whether every configuration released the same text.

    python benchmarks/bench_placement.py [--prompts 4] [--tokens 12] [--chunk-steps 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch

from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.pretrained import PretrainedLM, load_pretrained
from bmoe.run.generation import GenerationSettings
from bmoe.run.placement import EdgeSpec, PlacedSession, measured_throughput, open_placed_session

PROMPTS = ["What is the capital of France?", "Give me three tips for sleeping well.",
           "Explain what photosynthesis is in one sentence.", "Why is the sky blue?"]
MB = 1 << 20


@dataclass(frozen=True)
class Device:
    name: str
    fraction: float  # of the model's expert bytes it can hold
    rtt_ms: float  # its round trip from the validator


FLEET = [Device("eu-server", 1.1, 5), Device("us-workstation", 0.6, 40), Device("asia-workstation", 0.6, 90),
         Device("eu-laptop", 0.4, 15), Device("phone", 0.003, 30)]
JOINER = Device("us-server", 1.1, 45)


def specs(devices: list[Device], whole: int, throughput: float = 0.0) -> list[EdgeSpec]:
    return [EdgeSpec(int(d.fraction * whole), throughput=throughput, delay=d.rtt_ms / 1000) for d in devices]


def run(lm: PretrainedLM, prompts: list[list[int]], params: SamplingParams, devices: list[Device], holders: int,
        chunk_steps: int, changes: bool) -> tuple[PlacedSession, list[str], float, dict[str, str]]:
    whole = expert_bytes(lm)
    settings = GenerationSettings(edges=len(devices) + 1, replicas=1, chunk_steps=chunk_steps, seed=0,
                                  max_batch=len(prompts))
    fleet = specs(devices, whole, measured_throughput(lm.model))  # in-process edges: this machine's measurement
    s = open_placed_session(lm.model, settings, fleet, holders, decode=lm.tokenizer.decode)
    names = {address: d.name for address, d in zip(s.specs, devices, strict=True)}
    decoding = s.session.decoding
    requests = [decoding.submit(prompt, params) for prompt in prompts]
    start = time.perf_counter()
    step = 0
    while decoding.busy:
        if changes and step == chunk_steps // 2:  # during chunk 0: recorded when it ends
            names[s.join(specs([JOINER], whole)[0])] = JOINER.name
        if changes and step == chunk_steps + chunk_steps // 2:  # during chunk 1
            s.leave(next(a for a, n in names.items() if n == "eu-laptop"))
        decoding.step()
        step += 1
    seconds = time.perf_counter() - start
    texts = [decoding.result(request).text for request in requests]
    return s, texts, seconds, names


def expert_bytes(lm: PretrainedLM) -> int:
    return sum(p.numel() * p.element_size() for n, p in lm.model.named_parameters() if ".experts." in n)


def report(title: str, s: PlacedSession, names: dict[str, str], seconds: float, tokens: int,
           devices: list[Device]) -> None:
    rtt = {d.name: d.rtt_ms for d in [*devices, JOINER]}
    print(f"\n{title}: {tokens} tokens in {seconds:.1f} s = {tokens / seconds:.2f} verified tokens/s "
          f"(placement epoch {s.epoch}, {s.session.decoding.stats.chunks} chunks, "
          f"{s.session.decoding.stats.replica_rows} expert rows re-computed by other holders)")
    print(f"  {'edge':18} {'memory MB':>9} {'rtt ms':>6} {'slots held':>10} {'fetched MB':>10} {'calls':>6} "
          f"{'wait s':>6}  state")
    for address, name in names.items():
        held = sum(address in edges for edges in s.holders)
        memory = s.holdings[address].memory / MB
        state = "left" if address in s.left else "active" if address in s.specs else "-"
        print(f"  {name:18} {memory:9.1f} {rtt[name]:6.0f} {held:10d} "
              f"{s.holdings[address].bytes_fetched / MB:10.1f} {s.pool[address].calls:6d} "
              f"{s.pool[address].calls * rtt[name] / 1000:6.1f}  {state}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=12)
    parser.add_argument("--chunk-steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_pretrained("smollm2-135m", experts=8)
    prompts = [lm.chat_prompt([{"role": "user", "content": text}]) for text in PROMPTS[:args.prompts]]
    params = SamplingParams(max_tokens=args.tokens, temperature=0.0, eos_token_id=lm.stop_token_ids[0])
    config = lm.model.config
    print(f"smollm2-135m as an MoE: {config.num_hidden_layers} layers x {config.num_local_experts} experts, "
          f"{expert_bytes(lm) / MB:.0f} MB of expert weights; {args.prompts} prompts x {args.tokens} tokens, "
          f"chunks of {args.chunk_steps} steps, {args.threads} torch threads")
    texts = {}
    for title, devices, holders, changes in [("single device", FLEET[:1], 1, False),
                                             ("two large devices h=2", [FLEET[0], JOINER], 2, False),
                                             ("fleet h=2", FLEET, 2, False),
                                             ("fleet h=2, join + leave", FLEET, 2, True)]:
        s, texts[title], seconds, names = run(lm, prompts, params, devices, holders, args.chunk_steps, changes)
        tokens = sum(len(s.session.decoding.result(r).tokens) for r in range(len(prompts)))
        report(title, s, names, seconds, tokens, devices)
    same = len({tuple(t) for t in texts.values()}) == 1
    print(f"\nevery configuration released the same text: {same}")


if __name__ == "__main__":
    main()
