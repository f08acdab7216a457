"""Tiny language-model runs for the protocol's tests: a 2-layer, d = 32, 4-experts top-2 model on a short text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bmoe.lm.model import MoETransformer, build_model
from bmoe.lm.optim import adamw_step, with_moments
from bmoe.run.lm.config import LMRunConfig
from bmoe.run.lm.session import LMSession

TEXT = ("To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer the slings and "
        "arrows of outrageous fortune, or to take arms against a sea of troubles. ") * 20
CHARS = sorted(set(TEXT))
IDS = torch.tensor([CHARS.index(c) for c in TEXT], dtype=torch.int64)
TINY_LM: dict[str, Any] = dict(layers=2, hidden_size=32, intermediate_size=48, heads=4, kv_heads=2, lm_experts=4,
                               lm_top_k=2, context=16, steps=4, sequences=4, validation_every=100,
                               validation_batches=2, warmup=2, decay_steps=4)


def tiny_session(lm: dict[str, Any] | None = None, run_dir: Path | None = None, **run: Any) -> LMSession:
    """A session of the tiny model (``lm`` overrides its settings), 5 edges, no proof-of-work by default; in
    ``run_dir`` when given."""
    config = LMRunConfig.build({**TINY_LM, **(lm or {})}, {"num_edges": 5, "difficulty": 0, "seed": 7, **run})
    cut = int(IDS.numel() * 0.9)
    return LMSession(config, "".join(CHARS).encode(), len(CHARS), IDS[:cut], IDS[cut:], run_dir)


def reference_training(session: LMSession, steps: int) -> MoETransformer:
    """The same model trained in one process without the protocol, on the session's batches and schedule: one AdamW
    step per part that has gradients (the trusted part, each expert), each part counting its own steps, as torch's
    AdamW counts per parameter (an expert no token reached keeps its weights, moments and step)."""
    model = build_model(session.model_config, session.config.run.seed)
    params = dict(model.named_parameters())
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for name, p in params.items():
        parts.setdefault(_part(name), {})[name] = p.detach().clone()
    states = {part: with_moments(weights) for part, weights in parts.items()}
    for step in range(steps):
        x, y = session.batch(session.train_ids, step, 0)
        model.zero_grad()
        out = model(x, y)
        assert out.loss is not None
        out.loss.backward()
        for part, state in states.items():
            grads = {name: params[name].grad for name in parts[part] if params[name].grad is not None}
            if grads:
                states[part] = adamw_step(state, grads, session.lr(step))
        with torch.no_grad():
            for part, state in states.items():
                for name in parts[part]:
                    params[name].copy_(state[name])
    return model


def _part(name: str) -> str:
    """The object a parameter lives in: its expert's (``...experts.{j}``), else the trusted part's."""
    head, found, _ = name.partition(".block_sparse_moe.experts.")
    return f"{head}.{name[len(head) + len(found):].split('.')[0]}" if found else "trusted"


def max_difference(a: MoETransformer, b: MoETransformer) -> float:
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    return max(float((pa[name] - pb[name]).detach().abs().max()) for name in pa)
