"""Integer experts (``mlp-int``) against float32 ``mlp`` on Fashion-MNIST, measured in one run.

Trains one expert of each kind from the same initial weights (``mlp-int`` starts from the float
weights rounded to Q.28) for the same SGD steps on the same batches, the way an edge trains: the
output gradient is the mean cross-entropy's dL/d(output), float32, and the integer expert takes its
exact integer step from it. Batches of 300 rows are what one expert sees of a paper-scale task
(1000 samples, top-3 of 10 experts). Prints test accuracy of both and the int / float32 time ratios
of a forward pass and of an SGD update, measured alternately on the same batch in this run.

    python benchmarks/integer_experts.py [--steps 1000] [--rows 300] [--lr 0.1] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.nn.functional import cross_entropy

from bmoe.data import load_fashion_mnist
from bmoe.moe.experts import ExpertSpec, MLPExpert, build_expert
from bmoe.moe.fixed_point import IntegerMLPExpert

SPEC = ExpertSpec("mlp", (1, 28, 28), 10)  # the paper's expert: 784 -> 256 -> 10


def output_grad(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """dL/d(output) (n, C) of the mean cross-entropy, as the validator sends it."""
    output = output.detach().requires_grad_(True)
    cross_entropy(output, y).backward()
    assert output.grad is not None
    return output.grad


def float_step(mlp: MLPExpert, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
    mlp.zero_grad(set_to_none=True)
    output = mlp(x)
    output.backward(output_grad(output, y))
    with torch.no_grad():
        for p in mlp.parameters():
            p -= lr * p.grad


def int_step(expert: IntegerMLPExpert, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
    expert.load_state_dict(expert.integer_update(x, output_grad(expert(x), y), lr))


def accuracy(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        hits = sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(y), 1000))
    return hits / len(y)


def timed(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def speed(mlp: MLPExpert, expert: IntegerMLPExpert, x: torch.Tensor, y: torch.Tensor, lr: float) -> dict[str, float]:
    """Int / float32 ratios of best-of-20 seconds: a forward pass, and a training step (forward, then the
    update from the output gradient: autograd and ``p - lr * grad``, or the integer step). Run after the
    accuracies are measured: these steps move the weights."""
    with torch.no_grad():
        forward = [timed(lambda: mlp(x), 20), timed(lambda: expert(x), 20)]
    step = [timed(lambda: float_step(mlp, x, y, lr), 20), timed(lambda: int_step(expert, x, y, lr), 20)]
    return {"forward": forward[1] / forward[0], "step": step[1] / step[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_fashion_mnist()
    torch.manual_seed(0)
    mlp = build_expert(SPEC)
    assert isinstance(mlp, MLPExpert)
    expert = IntegerMLPExpert(mlp)  # the same initial weights, rounded
    order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(1))
    train_seconds = {"mlp": 0.0, "mlp-int": 0.0}
    for step in range(args.steps):
        rows = order[(step * args.rows) % (len(order) - args.rows):][:args.rows]
        x, y = data.x_train[rows], data.y_train[rows]
        started = time.perf_counter()
        float_step(mlp, x, y, args.lr)
        train_seconds["mlp"] += time.perf_counter() - started
        started = time.perf_counter()
        int_step(expert, x, y, args.lr)
        train_seconds["mlp-int"] += time.perf_counter() - started
    acc_float, acc_int = accuracy(mlp, data.x_test, data.y_test), accuracy(expert, data.x_test, data.y_test)
    ratios = speed(mlp, expert, data.x_train[order[:args.rows]], data.y_train[order[:args.rows]], args.lr)
    print(f"Fashion-MNIST, one 784-256-10 expert, {args.steps} SGD steps of {args.rows} rows, lr {args.lr}, "
          f"{args.threads} threads")
    print(f"test accuracy   mlp (float32) {acc_float:.4f}   mlp-int {acc_int:.4f}   "
          f"difference {acc_int - acc_float:+.4f}")
    print(f"time int/float32: forward {ratios['forward']:.1f}x   training step (forward + update) "
          f"{ratios['step']:.1f}x   whole training loop {train_seconds['mlp-int'] / train_seconds['mlp']:.1f}x")


if __name__ == "__main__":
    main()
