"""Throughput of ``bmoe serve`` under load: generated tokens per second through the HTTP API with one client at a
time against ``--clients`` clients at once (continuous batching: their requests share each step), on a real
server process.

It starts ``python -m bmoe serve`` on 127.0.0.1 (``--model smollm2-135m`` by default, or ``--model-dir RUN_DIR``)
with ``--threads`` torch threads, then sends ``--clients`` greedy completion requests of ``--tokens`` tokens each
(a prompt per client, no stop string; the model's end-of-sequence token may end one early;
tokens are counted from ``usage``): once one after another, once all together, alternately ``--repeats`` times
(so a change of the machine's load falls on both); it prints the median tokens/s of each, their ratio, the
largest batch the scheduler decoded, whether each request's text was the same both ways, and the load average
before and after.

    python benchmarks/serve_load.py [--model smollm2-135m | --model-dir RUN_DIR] [--clients 8] [--tokens 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

PROMPTS = ["Once upon a time", "The capital of France is", "In 1492, Columbus", "The best way to learn is",
           "Water boils at", "My favourite book is", "The sun rises in the", "A good breakfast has"]


def start(arguments: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "bmoe", "serve", *arguments, "--host", "127.0.0.1",
                                "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("serving "):
        process.terminate()
        raise SystemExit(f"bmoe serve did not start: {line!r}")
    return process, line.split(" at ", 1)[1].split()[0]


def ask(url: str, model: str, prompt: str, tokens: int) -> tuple[str, int]:
    body = {"model": model, "prompt": prompt, "max_tokens": tokens, "temperature": 0}
    answer = httpx.post(url + "/completions", json=body, timeout=600).json()
    return answer["choices"][0]["text"], answer["usage"]["completion_tokens"]


def measure(url: str, model: str, prompts: list[str], tokens: int, together: bool) -> tuple[float, list[str]]:
    """Tokens per second of ``prompts`` answered one after another, or all at once; the texts."""
    began = time.perf_counter()
    if together:
        with ThreadPoolExecutor(len(prompts)) as pool:
            answers = list(pool.map(lambda prompt: ask(url, model, prompt, tokens), prompts))
    else:
        answers = [ask(url, model, prompt, tokens) for prompt in prompts]
    elapsed = time.perf_counter() - began
    return sum(count for _, count in answers) / elapsed, [text for text, _ in answers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    source = ["--model-dir", str(args.model_dir)] if args.model_dir else ["--model", args.model or "smollm2-135m"]
    process, url = start([*source, "--threads", str(args.threads), "--max-batch", str(args.clients)])
    try:
        model = httpx.get(url + "/models").json()["data"][0]["id"]
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.clients)]
        ask(url, model, prompts[0], 2)  # warm up
        load_before = os.getloadavg()[0]
        alone, together, same = [], [], True
        for _ in range(args.repeats):
            rate, texts_alone = measure(url, model, prompts, args.tokens, together=False)
            alone.append(rate)
            rate, texts_together = measure(url, model, prompts, args.tokens, together=True)
            together.append(rate)
            same = same and texts_alone == texts_together
        stats = httpx.get(url.removesuffix("/v1") + "/bmoe/stats").json()
    finally:
        process.terminate()
        process.wait(30)
    one, many = statistics.median(alone), statistics.median(together)
    print(f"{model}: {args.clients} greedy requests of {args.tokens} tokens, {args.threads} torch thread(s), "
          f"median of {args.repeats}")
    print(f"one at a time: {one:.1f} tokens/s; {args.clients} at once: {many:.1f} tokens/s ({many / one:.2f}x); "
          f"largest batch decoded {stats['largest_batch']}, batched steps {stats['batched_steps']} of "
          f"{stats['steps']}")
    print(f"each request's text the same alone and batched: {same}")
    print(f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
