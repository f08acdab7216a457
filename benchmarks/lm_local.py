"""Training throughput of the default MoE language model without the protocol: the baseline of B-MoE's LM round.

Trains ``LMConfig``'s default model (4 layers, d = 128, 8 experts top-2, a 64-token context) at the character
level on a text file, or on a synthetic text of made-up words if none is given, with nanoGPT's CPU recipe
(batches of 12 windows, lr 1e-3, warmup 100, cosine to 1e-4), and prints tokens per second of training (one
warm-up step not timed) and, with ``--eval``, the loss on the last tenth of the text. A benchmark comparing
B-MoE with this baseline imports :func:`local_tokens_per_second` and prints the ratio it measures in one run.

    python benchmarks/lm_local.py [TEXT_FILE] [--steps 200] [--threads 1] [--eval]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

from bmoe.lm.config import LMConfig
from bmoe.lm.evaluation import bits_per_token, evaluate
from bmoe.lm.local_training import LocalTrainer, LocalTrainingSettings
from bmoe.lm.model import build_model


def synthetic_text(characters: int, seed: int = 0) -> str:
    """Sentences of 500 made-up words over a 26-letter alphabet: learnable, the size of a small corpus."""
    rng = random.Random(seed)
    words = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(1, 8))) for _ in range(500)]
    pieces, length = [], 0
    while length < characters:
        sentence = " ".join(rng.choices(words, k=rng.randint(4, 14))).capitalize() + ".\n"
        pieces.append(sentence)
        length += len(sentence)
    return "".join(pieces)[:characters]


def character_ids(text: str) -> tuple[torch.Tensor, int]:
    """The text as ids of its sorted distinct characters (1-D) and the vocabulary size."""
    alphabet = {c: i for i, c in enumerate(sorted(set(text)))}
    return torch.tensor([alphabet[c] for c in text], dtype=torch.int64), len(alphabet)


def local_tokens_per_second(trainer: LocalTrainer, ids: torch.Tensor, steps: int) -> float:
    """Training tokens per second over ``steps`` steps after one untimed warm-up step."""
    trainer.train(ids, steps=1)
    started = time.perf_counter()
    trainer.train(ids, steps=steps)
    seconds = time.perf_counter() - started
    return steps * trainer.settings.batch_size * trainer.block_size / seconds


def fail(message: str) -> None:
    """One line on stderr and exit status 2 (bad input)."""
    print(f"lm_local: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="?", type=Path, help="a UTF-8 text file (default: a synthetic text)")
    parser.add_argument("--steps", type=int, default=200, help="timed training steps")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady on a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval", action="store_true", help="print the loss on the last tenth of the text")
    args = parser.parse_args()
    if args.steps < 1 or args.threads < 1:
        fail("--steps and --threads must be positive")
    try:
        text = args.text.read_text(encoding="utf-8") if args.text else synthetic_text(1_000_000)
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {args.text}: {error}")
    ids, vocab_size = character_ids(text)
    split = len(ids) * 9 // 10
    train_ids, validation_ids = ids[:split], ids[split:]
    if len(validation_ids) <= LMConfig(vocab_size=1).max_position_embeddings:
        fail(f"the text ({len(text)} characters) is too short to train and validate on")
    torch.set_num_threads(args.threads)
    model = build_model(LMConfig(vocab_size=vocab_size), seed=args.seed)
    trainer = LocalTrainer(model, LocalTrainingSettings(steps=args.steps + 1), seed=args.seed)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"data: {args.text or 'synthetic text'}, {len(text):,} characters, vocabulary {vocab_size}; "
          f"model: LMConfig defaults ({parameters:,} parameters); {args.threads} threads")
    print(f"training tokens/s: {local_tokens_per_second(trainer, train_ids, args.steps):,.0f}  "
          f"({args.steps} steps of {trainer.settings.batch_size} x {trainer.block_size} tokens)")
    if args.eval:
        nats = evaluate(model, validation_ids, trainer.block_size, batches=20, batch_size=12, seed=args.seed)
        print(f"validation loss after {trainer.step} steps: {nats:.4f} nats/char ({bits_per_token(nats):.3f} bits)")


if __name__ == "__main__":
    main()
