"""SmolLM2-135M as an MoE with fewer experts than all: the perplexity cost of choosing K of E neuron slices a token,
routers distilled against the dense FFN (``bmoe.lm.pretrained.router_distillation``).

The model is fetched into the cache if absent (``bmoe lm fetch smollm2-135m``), the text is the Brown Corpus
(``bmoe lm data --corpus brown``): the routers are distilled on ``--train-windows`` windows of 256 tokens of its
training documents, and perplexity is measured on ``--val-windows`` windows of its held-out documents. It prints,
per K, the perplexity with distilled routers and with zero routers (which keep the first K slices), each as a
ratio to all E active (the dense model). One thread; the machine's load changes the time, not the numbers.

    python benchmarks/smollm2_routers.py                               # E = 8, K = 6, 4
    python benchmarks/smollm2_routers.py --experts 32 --top-k 24 16
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from bmoe.lm.brown import load_brown
from bmoe.lm.evaluation import evaluate_all
from bmoe.lm.pretrained import load_pretrained
from bmoe.lm.pretrained.router_distillation import distill_routers, with_top_k

WINDOW = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top-k", type=int, nargs="+", default=[6, 4])
    parser.add_argument("--train-windows", type=int, default=16)
    parser.add_argument("--val-windows", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    smollm2 = load_pretrained("smollm2-135m", experts=args.experts)
    corpus = load_brown()
    train = torch.tensor(smollm2.tokenizer.encode(corpus.train_text[:8 * WINDOW * args.train_windows]))
    val = torch.tensor(smollm2.tokenizer.encode(corpus.validation_text[:8 * WINDOW * args.val_windows]))
    if len(train) < WINDOW * args.train_windows or len(val) <= WINDOW * args.val_windows:
        raise SystemExit("not enough text for the windows asked for")
    windows = train[:WINDOW * args.train_windows].view(args.train_windows, WINDOW)  # (B, T)
    val = val[:WINDOW * args.val_windows + 1]
    dense = evaluate_all(smollm2.model, val, WINDOW, batch_size=4)
    print(f"SmolLM2-135M, E = {args.experts}, {val.numel() - 1} held-out Brown tokens: all {args.experts} active "
          f"(the dense model) perplexity {math.exp(dense):.2f}")
    for k in args.top_k:
        distilled = evaluate_all(distill_routers(smollm2.model, windows, k), val, WINDOW, batch_size=4)
        first = evaluate_all(with_top_k(smollm2.model, k), val, WINDOW, batch_size=4)
        print(f"K = {k:>2} of {args.experts}: distilled routers perplexity {math.exp(distilled):.4g} "
              f"(x{math.exp(distilled - dense):.3g} the dense model's), zero routers (the first K) "
              f"{math.exp(first):.4g} (x{math.exp(first - dense):.3g})", flush=True)
    print(f"({time.perf_counter() - started:.0f} s on one thread)")


if __name__ == "__main__":
    main()
