"""A tiny model, a few prompts and what they generate without any protocol, for the verified generation tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from bmoe.lm.decoding.engine import complete
from bmoe.lm.decoding.sampling import SamplingParams
from bmoe.lm.model import MoETransformer
from bmoe.protocol.generation.edges import OutputAttack
from bmoe.run.generation import GenerationSession, GenerationSettings, open_session
from tests.lm.tiny_models import tiny_model

PROMPTS = [[1, 2, 3], [4, 5, 6, 7], [9]]
PARAMS = [SamplingParams(max_tokens=14, temperature=0.8, seed=i) for i in range(len(PROMPTS))]


def model() -> MoETransformer:
    return tiny_model()


def clean_tokens(m: MoETransformer) -> list[list[int]]:
    """Each prompt's tokens generated in one process, no protocol."""
    return [complete(m, prompt, params).tokens for prompt, params in zip(PROMPTS, PARAMS, strict=True)]


def generate(session: GenerationSession, before_step: Callable[[int], None] | None = None,
             payer: str | None = None) -> list[list[int]]:
    """Every prompt through the session's verified decoding, to its end; ``before_step(step)`` runs first;
    ``payer``: the account every request is charged to (a paid session)."""
    decoding = session.decoding
    requests = [decoding.submit(prompt, params, payer=payer) for prompt, params in zip(PROMPTS, PARAMS, strict=True)]
    step = 0
    while decoding.busy:
        if before_step is not None:
            before_step(step)
        decoding.step()
        step += 1
    return [decoding.result(request).tokens for request in requests]


def liar(layer: int, expert: int, every: int = 1) -> OutputAttack:
    """Zeroes expert ``expert`` of layer ``layer``'s outputs (every ``every``-th call of it)."""
    seen = [0]

    def attack(at: int, e: int, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        if (at, e) != (layer, expert):
            return outputs
        seen[0] += 1
        return outputs * 0 if seen[0] % every == 0 else outputs
    return attack


def session(m: MoETransformer, liars: dict[int, OutputAttack] | None = None, run_dir: Path | None = None,
            decode: Callable[[list[int]], str] | None = None, **settings: object) -> GenerationSession:
    values: dict[str, object] = {"edges": 5, "replicas": 1, "chunk_steps": 4, **settings}
    return open_session(m, GenerationSettings(**values), (liars or {}).get, decode,  # type: ignore[arg-type]
                        run_dir=run_dir)


def receipt(s: GenerationSession, request: int) -> dict[str, object]:
    """The parts of ``request``'s served receipt that a replay reads (``serve/receipt.py`` makes the rest)."""
    from bmoe.lm.decoding.token_digest import tokens_sha256
    result = s.decoding.result(request)
    return {"prompt": {"tokens": len(result.prompt), "sha256": tokens_sha256(result.prompt)},
            "completion": {"tokens": len(result.tokens), "sha256": tokens_sha256(result.tokens)},
            "ledger": s.decoding.receipt(request)}
