"""``bmoe lm sample``: text from the model a run's ledger holds, for a quick look (decoded with a KV cache,
``lm/decoding``)."""

from __future__ import annotations

from pathlib import Path

import click

from bmoe.cli.errors import UserError
from bmoe.cli.finite import FiniteFloatRange
from bmoe.console import console


@click.command("sample")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--prompt", default="\n", show_default=True, help="the text to continue")
@click.option("--tokens", "max_new_tokens", type=click.IntRange(min=0, max=100_000), default=300, show_default=True,
              help="tokens to generate")
@click.option("--temperature", type=FiniteFloatRange(min=0.0), default=0.8, show_default=True,
              help="sampling temperature (0: greedy)")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="sample among the k likeliest tokens")
@click.option("--top-p", type=FiniteFloatRange(min=0.0, max=1.0, min_open=True), default=1.0, show_default=True,
              help="sample among the likeliest tokens whose probability reaches p (nucleus sampling)")
@click.option("--seed", type=int, default=0, show_default=True, help="the sampler's seed")
def sample_command(run_dir: Path, prompt: str, max_new_tokens: int, temperature: float, top_k: int | None,
                   top_p: float, seed: int) -> None:
    """Generate text from the model a run's ledger holds."""
    from bmoe.lm.decoding.engine import complete
    from bmoe.lm.decoding.sampling import SamplingParams
    from bmoe.run.lm.artifacts import open_lm_run

    run = open_lm_run(run_dir)
    try:
        params = SamplingParams(max_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                                seed=seed)
        completion = complete(run.model, run.tokenizer.encode(prompt), params, run.tokenizer.decode)
    except ValueError as err:
        raise UserError(f"cannot sample: {err}") from None
    console.print(prompt + completion.text, markup=False, highlight=False, soft_wrap=True)
