"""A tiny MoE language model and a tiny repetitive text for the local-training, evaluation and generation tests
(characters mapped to ids here: the project's tokenizer is not what these tests are about)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from bmoe.lm.config import LMConfig
from bmoe.lm.local_training import LocalTrainer, LocalTrainingSettings, load_weights
from bmoe.lm.model import MoETransformer, build_model
from bmoe.lm.optim import Tensors

TEXT = "to be, or not to be, that is the question. " * 12
CHARACTERS = sorted(set(TEXT))
CONTEXT = 16


def encode(text: str) -> list[int]:
    return [CHARACTERS.index(c) for c in text]


def stream(text: str = TEXT) -> torch.Tensor:
    return torch.tensor(encode(text), dtype=torch.int64)  # (n,)


def tiny_config(tie_word_embeddings: bool = False) -> LMConfig:
    return LMConfig(vocab_size=len(CHARACTERS), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
                    max_position_embeddings=CONTEXT, tie_word_embeddings=tie_word_embeddings)


MEMORISE = LocalTrainingSettings(steps=80, batch_size=8, max_lr=2e-2, warmup=10, min_lr=2e-3)


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread inside (tests/lm/conftest.py wraps every test in it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.cache
def _memorised_state() -> Tensors:
    trainer = LocalTrainer(build_model(tiny_config(), seed=0), MEMORISE, seed=0)
    trainer.train(stream())
    return trainer.state


def memorised_model() -> MoETransformer:
    """The tiny model trained on TEXT until it knows it (trained once per test process)."""
    model = MoETransformer(tiny_config())
    load_weights(model, {name: tensor.clone() for name, tensor in _memorised_state().items()})
    return model
